package server

import "github.com/chronostream/chronostream/internal/natsd"

// nodeName names this node in the cluster status: the embedded server's
// name, or the external NATS server this node is connected to.
func (s *Server) nodeName() string {
	if s.ns != nil {
		return s.ns.Name()
	}
	if s.nc != nil {
		return s.nc.ConnectedServerName()
	}
	return ""
}

// clusterMeta reports the embedded JetStream cluster's members; false when
// the embedded server runs alone or the log is an external deployment.
func (s *Server) clusterMeta() (natsd.Meta, bool) {
	if s.ns == nil {
		return natsd.Meta{}, false
	}
	return s.ns.Meta()
}
