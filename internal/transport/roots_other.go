//go:build !unix || darwin

package transport

// sslCertFileRead: on macOS and Windows Go asks the system to verify, and
// SSL_CERT_FILE plays no part.
const sslCertFileRead = false
