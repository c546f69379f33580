//go:build unix && !darwin

package transport

// sslCertFileRead: Go reads the system roots from SSL_CERT_FILE here.
const sslCertFileRead = true
