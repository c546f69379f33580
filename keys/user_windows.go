package keys

import "strings"

// dbName is the login name in the account database's name for the user:
// Windows gives DOMAIN\user, and gcloud, which reads USERNAME (the name
// alone) there, logs in as user.
func dbName(name string) string { return name[strings.LastIndex(name, `\`)+1:] }
