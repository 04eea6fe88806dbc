// Package all registers every sink type with the sink registry: the serve
// and forward commands import it (blank) so that a config file can name any
// type. A new sink package adds one blank import here.
package all

import (
	_ "github.com/chronostream/chronostream/internal/sink/grafana"
	_ "github.com/chronostream/chronostream/internal/sink/influxdb"
	_ "github.com/chronostream/chronostream/internal/sink/webhook"
)
