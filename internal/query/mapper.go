package query

import (
	"github.com/influxdata/influxql"

	"github.com/chronostream/chronostream/event"
	"github.com/chronostream/chronostream/internal/query/tsdb"
)

// mapper tells influxql's wildcard expansion and typing the fields and tags
// of the measurements a statement reads (hold the DB's lock).
type mapper struct{ db *tsdb.DB }

func (m mapper) FieldDimensions(src *influxql.Measurement) (map[string]influxql.DataType, map[string]struct{}, error) {
	fields := map[string]influxql.DataType{}
	dims := map[string]struct{}{}
	for _, ms := range measurements(m.db, influxql.Sources{src}) {
		for f, t := range ms.Fields {
			if _, ok := fields[f]; !ok {
				fields[f] = dataType(t)
			}
		}
		for _, k := range ms.TagKeys() {
			dims[k] = struct{}{}
		}
	}
	return fields, dims, nil
}

func (m mapper) MapType(src *influxql.Measurement, field string) influxql.DataType {
	typ := influxql.Unknown
	for _, ms := range measurements(m.db, influxql.Sources{src}) {
		if t, ok := ms.Fields[field]; ok {
			return dataType(t)
		}
		for _, k := range ms.TagKeys() {
			if k == field {
				typ = influxql.Tag
			}
		}
	}
	return typ
}

func (mapper) CallType(name string, args []influxql.DataType) (influxql.DataType, error) {
	return influxql.Unknown, nil
}

func dataType(t event.FieldType) influxql.DataType {
	switch t {
	case event.TypeFloat:
		return influxql.Float
	case event.TypeInt:
		return influxql.Integer
	case event.TypeUint:
		return influxql.Unsigned
	case event.TypeString:
		return influxql.String
	case event.TypeBool:
		return influxql.Boolean
	}
	return influxql.Unknown
}
