// Package ndjson ingests streams of JSON values over HTTP: the anacrolix
// telemetry server's "POST /" and our own API's events endpoint. Each JSON
// value is one event, kept verbatim.
//
// The package has two layers: Decoder, a pure decoder that splits a stream
// of JSON values (separated by any whitespace, or none where the grammar
// allows, as serde's stream deserializer does) and validates each strictly;
// and Handler, the HTTP transport that streams decoded values into the log
// in pipelined, group-committed batches.
package ndjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/chronostream/chronostream/internal/ingest/jsonscan"
)

// MaxDepth bounds how deeply values may nest (see jsonscan.MaxDepth).
const MaxDepth = jsonscan.MaxDepth

// ErrTooLarge is wrapped by the error for a value over the size limit.
var ErrTooLarge = errors.New("value too large")

// SyntaxError reports malformed input.
type SyntaxError struct {
	Line   int   // 1-based line of the error
	Offset int64 // byte offset of the error in the input
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("line %d: invalid JSON: %s", e.Line, e.Msg) }

// TooLargeError reports a value over Options.MaxValueBytes.
type TooLargeError struct {
	Line  int // 1-based line where the value starts
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("line %d: a value exceeds the limit of %d bytes", e.Line, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// ReadError wraps an error of the underlying reader.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "reading input: " + e.Err.Error() }

func (e *ReadError) Unwrap() error { return e.Err }

// Options configure a Decoder.
type Options struct {
	// MaxValueBytes bounds one value; 0 means 1 MiB. The decoder buffers at
	// most about this much beyond its read buffer.
	MaxValueBytes int
	// UnwrapArray makes an input whose first value is an array yield that
	// array's elements instead (a JSON array of events).
	UnwrapArray bool
	// BufferSize is the initial read buffer; 0 means 64 KiB.
	BufferSize int
}

// Array-unwrapping states.
const (
	arrNone     = iota // not unwrapping
	arrOpen            // after '[': an element or ']'
	arrNeedElem        // after ',': an element
	arrAfter           // after an element: ',' or ']'
	arrClosed          // after ']': only whitespace
)

// Decoder yields the JSON values of a stream one at a time.
type Decoder struct {
	r    io.Reader
	opts Options
	sc   jsonscan.Scanner

	buf      []byte
	pos, end int   // buf[pos:end] is read but not yet decoded
	base     int64 // input offset of buf[0]
	line     int   // line of buf[pos]
	eof      bool
	started  bool
	arr      int
	valLine  int
	// want is how many bytes buf[pos:] must hold before the next scan: each
	// rescan of an incomplete value waits for its buffered part to double,
	// so that a value trickled in byte by byte costs linear, not quadratic, time.
	want int
	rerr error // the reader's error, returned once the buffered input is decoded
	err  error // sticky
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader, opts Options) *Decoder {
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = 1 << 20
	}
	if opts.BufferSize <= 0 {
		opts.BufferSize = 64 << 10
	}
	return &Decoder{r: r, opts: opts, buf: make([]byte, opts.BufferSize), line: 1}
}

// Line returns the 1-based line on which the value last returned by Next starts.
func (d *Decoder) Line() int { return d.valLine }

// Next returns the next value with surrounding whitespace removed. The
// slice is only valid until the next call. At the end of the input Next
// returns io.EOF; after any other error it keeps returning that error.
// Read errors are wrapped, so errors.Is sees the reader's error.
func (d *Decoder) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	v, err := d.next()
	if err != nil {
		d.err = err
	}
	return v, err
}

// Values ranges over the values next returns (a Decoder's Next, or that of
// a decoder built on one) until the end of the input. Another error ends
// the range and is stored in *err; a loop that breaks leaves *err as it
// was. A value is only valid until the loop moves on.
func Values(next func() ([]byte, error), err *error) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for {
			v, e := next()
			if e == io.EOF {
				return
			}
			if e != nil {
				*err = e
				return
			}
			if !yield(v) {
				return
			}
		}
	}
}

func (d *Decoder) next() ([]byte, error) {
	for {
		for d.pos < d.end {
			c := d.buf[d.pos]
			if c == '\n' {
				d.line++
			} else if c != ' ' && c != '\t' && c != '\r' {
				break
			}
			d.pos++
		}
		if d.pos == d.end {
			if d.eof {
				if d.arr != arrNone && d.arr != arrClosed {
					return nil, d.syntaxError(0, "unexpected end of input: the array is not closed")
				}
				return nil, io.EOF
			}
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		c := d.buf[d.pos]
		if !d.started {
			d.started = true
			if d.opts.UnwrapArray && c == '[' {
				d.arr = arrOpen
				d.pos++
				continue
			}
		}
		switch d.arr {
		case arrOpen:
			if c == ']' {
				d.arr = arrClosed
				d.pos++
				continue
			}
		case arrAfter:
			switch c {
			case ',':
				d.arr = arrNeedElem
			case ']':
				d.arr = arrClosed
			default:
				return nil, d.syntaxError(0, fmt.Sprintf("invalid character %s after an array element", jsonscan.QuoteChar(c)))
			}
			d.pos++
			continue
		case arrClosed:
			return nil, d.syntaxError(0, fmt.Sprintf("invalid character %s after the top-level array", jsonscan.QuoteChar(c)))
		}

		if !d.eof && d.rerr == nil && d.end-d.pos < d.want {
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		n, err := d.sc.Value(d.buf[d.pos:d.end], d.eof)
		if err == jsonscan.ErrMore {
			if d.end-d.pos > d.opts.MaxValueBytes {
				d.valLine = d.line
				return nil, &TooLargeError{Line: d.line, Limit: d.opts.MaxValueBytes}
			}
			d.want = min(2*(d.end-d.pos), d.opts.MaxValueBytes+1)
			if err := d.fill(); err != nil {
				return nil, err
			}
			continue
		}
		d.want = 0
		if se, ok := err.(*jsonscan.Error); ok {
			return nil, d.syntaxError(se.Off, se.Msg)
		}
		v := d.buf[d.pos : d.pos+n]
		if n > d.opts.MaxValueBytes {
			d.valLine = d.line
			return nil, &TooLargeError{Line: d.line, Limit: d.opts.MaxValueBytes}
		}
		if c != '{' && c != '[' && c != '"' && d.pos+n < d.end {
			// Numbers and literals do not end themselves: "12" must not
			// pass for 1 and 2, nor "truex" for true.
			next := d.buf[d.pos+n]
			ok := jsonscan.IsSpace(next)
			if d.arr != arrNone {
				ok = ok || next == ',' || next == ']'
			} else {
				ok = ok || next == '{' || next == '[' || next == '"'
			}
			if !ok {
				return nil, d.syntaxError(n, fmt.Sprintf("invalid character %s after a top-level value", jsonscan.QuoteChar(next)))
			}
		}
		d.valLine = d.line
		d.line += bytes.Count(v, []byte{'\n'})
		d.pos += n
		if d.arr != arrNone {
			d.arr = arrAfter
		}
		return v, nil
	}
}

// syntaxError returns an error at buf[pos+off].
func (d *Decoder) syntaxError(off int, msg string) error {
	d.valLine = d.line + bytes.Count(d.buf[d.pos:d.pos+off], []byte{'\n'})
	return &SyntaxError{Line: d.valLine, Offset: d.base + int64(d.pos+off), Msg: msg}
}

// fill reads more input, keeping buf[pos:end]. A read error is held back
// until the values read before it are decoded: they are acknowledged.
func (d *Decoder) fill() error {
	if d.rerr != nil {
		return d.rerr
	}
	if d.pos > 0 {
		// The kept bytes are at most one partial value: cheap to move.
		copy(d.buf, d.buf[d.pos:d.end])
		d.base += int64(d.pos)
		d.end -= d.pos
		d.pos = 0
	}
	if d.end == len(d.buf) {
		size := min(2*len(d.buf), d.opts.MaxValueBytes+1)
		size = max(size, len(d.buf)+1)
		nb := make([]byte, size)
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[d.end:])
	d.end += n
	switch {
	case err == io.EOF:
		d.eof = true
	case err != nil:
		d.rerr = &ReadError{Err: err}
	}
	return nil
}
