package event

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// FieldType is the type of a field value, as in InfluxDB's line protocol.
type FieldType uint8

// Field types.
const (
	TypeFloat FieldType = iota + 1
	TypeInt
	TypeUint
	TypeString
	TypeBool
)

func (t FieldType) String() string {
	switch t {
	case TypeFloat:
		return "float"
	case TypeInt:
		return "integer"
	case TypeUint:
		return "unsigned"
	case TypeString:
		return "string"
	case TypeBool:
		return "boolean"
	}
	return "invalid"
}

// Value is a typed field value. The zero Value is invalid.
type Value struct {
	typ FieldType
	num uint64 // float bits, int, uint or bool (0/1)
	str string
}

// Float returns a float field value.
func Float(f float64) Value { return Value{typ: TypeFloat, num: math.Float64bits(f)} }

// Int returns a signed integer field value.
func Int(i int64) Value { return Value{typ: TypeInt, num: uint64(i)} }

// Uint returns an unsigned integer field value.
func Uint(u uint64) Value { return Value{typ: TypeUint, num: u} }

// String returns a string field value.
func String(s string) Value { return Value{typ: TypeString, str: s} }

// Bool returns a boolean field value.
func Bool(b bool) Value {
	v := Value{typ: TypeBool}
	if b {
		v.num = 1
	}
	return v
}

// Type returns the value's type.
func (v Value) Type() FieldType { return v.typ }

// FloatValue returns the value of a float field.
func (v Value) FloatValue() float64 { return math.Float64frombits(v.num) }

// IntValue returns the value of an integer field.
func (v Value) IntValue() int64 { return int64(v.num) }

// UintValue returns the value of an unsigned field.
func (v Value) UintValue() uint64 { return v.num }

// StringValue returns the value of a string field.
func (v Value) StringValue() string { return v.str }

// BoolValue returns the value of a boolean field.
func (v Value) BoolValue() bool { return v.num != 0 }

// Number returns the value as a float64 and whether it is numeric.
func (v Value) Number() (float64, bool) {
	switch v.typ {
	case TypeFloat:
		return v.FloatValue(), true
	case TypeInt:
		return float64(v.IntValue()), true
	case TypeUint:
		return float64(v.num), true
	}
	return 0, false
}

// Any returns the value as float64, int64, uint64, string or bool.
func (v Value) Any() any {
	switch v.typ {
	case TypeFloat:
		return v.FloatValue()
	case TypeInt:
		return v.IntValue()
	case TypeUint:
		return v.num
	case TypeString:
		return v.str
	case TypeBool:
		return v.BoolValue()
	}
	return nil
}

// Text formats the value as it would appear in a CSV cell or a text filter.
func (v Value) Text() string {
	switch v.typ {
	case TypeFloat:
		return strconv.FormatFloat(v.FloatValue(), 'g', -1, 64)
	case TypeInt:
		return strconv.FormatInt(v.IntValue(), 10)
	case TypeUint:
		return strconv.FormatUint(v.num, 10)
	case TypeString:
		return v.str
	case TypeBool:
		return strconv.FormatBool(v.BoolValue())
	}
	return ""
}

// MarshalJSON encodes the value as a JSON number, string or boolean. Non-finite
// floats, which JSON cannot carry, are encoded as the strings "NaN", "+Inf", "-Inf".
func (v Value) MarshalJSON() ([]byte, error) {
	switch v.typ {
	case TypeFloat:
		f := v.FloatValue()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
		}
		return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
	case TypeInt, TypeUint, TypeBool:
		return []byte(v.Text()), nil
	case TypeString:
		return json.Marshal(v.str)
	}
	return nil, fmt.Errorf("event: marshal of invalid field value")
}
