// Package peerconf holds the configuration the tests and the benchmarks
// start real peers with, so that both measure and check the same servers.
package peerconf

import (
	"fmt"
	"path/filepath"
)

// InfluxDB returns an influxd 1.x configuration with its data under dir,
// its HTTP API on 127.0.0.1:httpPort and its RPC service on
// 127.0.0.1:rpcPort. Its defaults stand everywhere that matters (the WAL is
// fsynced per write); only the places, the ports, the phoning home and the
// per-request logging change.
func InfluxDB(dir string, httpPort, rpcPort int) string {
	return fmt.Sprintf(`reporting-disabled = true
bind-address = "127.0.0.1:%d"

[meta]
  dir = %q
  logging-enabled = false

[data]
  dir = %q
  wal-dir = %q
  wal-fsync-delay = "0s"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:%d"
  auth-enabled = false
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false
`, rpcPort, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpPort)
}
