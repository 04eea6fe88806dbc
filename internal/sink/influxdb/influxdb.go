// Package influxdb is the InfluxDB sink: it writes events as line protocol
// to InfluxDB 1.x (/write) or 2.x (/api/v2/write).
package influxdb
