package lineproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// LineError is a line that was refused: its number (from 1), its text (cut
// to a readable length) and why.
type LineError struct {
	Line int
	Text string
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: unable to parse '%s': %v", e.Line, e.Text, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// ErrLineTooLong is the reason of a line over the Scanner's limit.
var ErrLineTooLong = errors.New("line too long")

// maxQuoted bounds how much of a bad line an error quotes.
const maxQuoted = 1024

// NewLineError returns the error of line number n, quoting its text.
func NewLineError(n int, line []byte, err error) *LineError {
	if len(line) > maxQuoted {
		return &LineError{Line: n, Text: string(line[:maxQuoted]) + "…", Err: err}
	}
	return &LineError{Line: n, Text: string(line), Err: err}
}

// Scanner splits a body into lines, numbering them from 1. It skips blank
// lines and comments, trims the spaces and tabs around a line and a
// carriage return before its newline, and holds at most one line in memory:
// a line over the limit is skipped (without being buffered) and reported.
type Scanner struct {
	r       io.Reader
	buf     []byte
	start   int // buf[start:end] is read but not yet returned
	end     int
	scanned int // buf[start:scanned] holds no newline
	max     int
	line    int
	eof     bool
	err     error // the reader's error, returned once the data before it is
	skip    bool  // discarding the rest of a line over the limit
}

// NewScanner returns a scanner of r's lines of at most maxLine bytes.
func NewScanner(r io.Reader, maxLine int) *Scanner {
	return &Scanner{r: r, max: max(maxLine, 1), buf: make([]byte, min(64<<10, maxLine+1))}
}

// Next returns the next line to parse and its number. The line is valid
// until the next call. A line over the limit yields a *LineError (and
// scanning may go on); the end of the body yields io.EOF; a read error is
// returned as it is, and ends the scan.
func (s *Scanner) Next() ([]byte, int, error) {
	for {
		line, ok, err := s.rawLine()
		if err != nil || !ok {
			return nil, s.line, err
		}
		line = trim(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		return line, s.line, nil
	}
}

// rawLine returns the next line, untrimmed; ok is false at the end.
func (s *Scanner) rawLine() (line []byte, ok bool, err error) {
	for {
		if i := bytes.IndexByte(s.buf[s.scanned:s.end], '\n'); i >= 0 {
			nl := s.scanned + i
			line = s.buf[s.start:nl]
			s.start, s.scanned = nl+1, nl+1
			s.line++
			if s.skip || len(line) > s.max {
				s.skip = false
				return nil, false, NewLineError(s.line, line[:min(len(line), maxQuoted)], ErrLineTooLong)
			}
			return line, true, nil
		}
		s.scanned = s.end
		if s.end-s.start > s.max {
			// Over the limit: keep the line's head for the error and
			// drop the rest as it comes.
			s.skip = true
			s.end = s.start + min(maxQuoted, s.end-s.start)
			s.scanned = s.end
		}
		if s.eof {
			if s.err != nil {
				// What precedes a failed read (a body over its limit, a
				// corrupt gzip stream) may be a cut line: never a line.
				return nil, false, s.err
			}
			if s.start == s.end && !s.skip {
				return nil, false, io.EOF
			}
			// The last line has no newline.
			line = s.buf[s.start:s.end]
			s.start, s.scanned = s.end, s.end
			s.line++
			if s.skip || len(line) > s.max {
				s.skip = false
				return nil, false, NewLineError(s.line, line, ErrLineTooLong)
			}
			return line, true, nil
		}
		s.fill()
	}
}

// fill reads more of the body, making room first.
func (s *Scanner) fill() {
	if s.start > 0 && (s.end == len(s.buf) || s.start == s.end) {
		n := copy(s.buf, s.buf[s.start:s.end])
		s.scanned -= s.start
		s.start, s.end = 0, n
	}
	if s.end == len(s.buf) {
		// A line longer than the buffer: grow up to the limit (plus one
		// byte to see that a line is over it).
		nb := make([]byte, min(2*len(s.buf), s.max+1+maxQuoted))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[s.end:])
	s.end += n
	if err != nil {
		s.eof = true
		if err != io.EOF {
			s.err = err
		}
	}
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\r':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}
