//go:build !windows

package keys

// dbName is the login name in the account database's name for the user,
// as Python's pwd gives it to gcloud: all of it (a winbind DOMAIN\user
// included).
func dbName(name string) string { return name }
