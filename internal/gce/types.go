package gce

// The Compute API resources gkessh reads and writes, cut down to the fields
// it uses. Go names and JSON tags are those of google.golang.org/api/compute/v1,
// which the emulator serves and its tests check against, so a field here
// decodes exactly as the official client would decode it.

// Metadata is an instance's metadata or a project's common instance
// metadata. A set call replaces the whole item list and must carry the
// Fingerprint read with it.
type Metadata struct {
	Kind        string `json:"kind,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Items is left out when empty, as the official client sends it; GCE
	// reads a missing list as empty, so a set still removes every item.
	Items []*MetadataItems `json:"items,omitempty"`
}

// MetadataItems is one metadata key and its value.
type MetadataItems struct {
	Key   string  `json:"key,omitempty"`
	Value *string `json:"value,omitempty"`
}

// Instance is a Compute Engine VM.
type Instance struct {
	Id                uint64              `json:"id,omitempty,string"`
	Name              string              `json:"name,omitempty"`
	Zone              string              `json:"zone,omitempty"` // a URL; see ZoneName
	Status            string              `json:"status,omitempty"`
	Labels            map[string]string   `json:"labels,omitempty"`
	Metadata          *Metadata           `json:"metadata,omitempty"`
	NetworkInterfaces []*NetworkInterface `json:"networkInterfaces,omitempty"`
	Disks             []*AttachedDisk     `json:"disks,omitempty"`
	ServiceAccounts   []*ServiceAccount   `json:"serviceAccounts,omitempty"`
	Tags              *Tags               `json:"tags,omitempty"`
}

// Tags are an instance's network tags, which firewall rules target.
type Tags struct {
	Items []string `json:"items,omitempty"`
}

// NetworkInterface is one of an instance's NICs.
type NetworkInterface struct {
	Name          string          `json:"name,omitempty"`
	Network       string          `json:"network,omitempty"` // a URL
	NetworkIP     string          `json:"networkIP,omitempty"`
	Ipv6Address   string          `json:"ipv6Address,omitempty"`
	AccessConfigs []*AccessConfig `json:"accessConfigs,omitempty"`
}

// AccessConfig is a NIC's external address.
type AccessConfig struct {
	NatIP string `json:"natIP,omitempty"`
}

// AttachedDisk is a disk attached to an instance.
type AttachedDisk struct {
	Boot            bool              `json:"boot,omitempty"`
	GuestOsFeatures []*GuestOsFeature `json:"guestOsFeatures,omitempty"`
}

// GuestOsFeature is a feature of a disk's OS image, such as WINDOWS.
type GuestOsFeature struct {
	Type string `json:"type,omitempty"`
}

// ServiceAccount is a service account an instance runs as.
type ServiceAccount struct {
	Email string `json:"email,omitempty"`
}

// Project is a Compute Engine project.
type Project struct {
	Name                   string    `json:"name,omitempty"`
	Id                     uint64    `json:"id,omitempty,string"`
	CommonInstanceMetadata *Metadata `json:"commonInstanceMetadata,omitempty"`
}

// operation is a long-running set call; wait polls it until Status is DONE.
type operation struct {
	Name                string   `json:"name,omitempty"`
	Zone                string   `json:"zone,omitempty"`
	Status              string   `json:"status,omitempty"`
	Error               *opError `json:"error,omitempty"`
	HttpErrorStatusCode int64    `json:"httpErrorStatusCode,omitempty"`
	HttpErrorMessage    string   `json:"httpErrorMessage,omitempty"`
}

type opError struct {
	Errors []*opErrorItem `json:"errors,omitempty"`
}

type opErrorItem struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// instanceAggregatedList is one page of instances.aggregatedList, keyed by
// scope ("zones/us-west1-a").
type instanceAggregatedList struct {
	Items         map[string]instancesScopedList `json:"items,omitempty"`
	NextPageToken string                         `json:"nextPageToken,omitempty"`
}

type instancesScopedList struct {
	Instances []*Instance `json:"instances,omitempty"`
}

// guestAttributes is the reply to instances.getGuestAttributes with a
// queryPath.
type guestAttributes struct {
	QueryValue *guestAttributesValue `json:"queryValue,omitempty"`
}

type guestAttributesValue struct {
	Items []*guestAttributesEntry `json:"items,omitempty"`
}

type guestAttributesEntry struct {
	Namespace string `json:"namespace,omitempty"`
	Key       string `json:"key,omitempty"`
	Value     string `json:"value,omitempty"`
}
