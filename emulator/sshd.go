package emulator

// newSSHD starts the node's SSH server in the configured mode. (Being written.)
func (s *Server) newSSHD(n *Node) (nodeSSHD, error) {
	return nil, nil
}
