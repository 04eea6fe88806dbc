// Package difftest holds the differential test of chronostream's InfluxQL
// /query endpoint against a real InfluxDB 1.6: the same data is written to
// both, every query of the corpus in testdata/influxql (and every query of
// the Grafana dashboard in deploy/grafana) is run against both, and the JSON
// answers must be equal. It has no code outside its tests.
package difftest
