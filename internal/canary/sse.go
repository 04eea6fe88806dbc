package canary

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// sseMessage is one Server-Sent Events message (the fields the tail uses).
type sseMessage struct {
	id, event string
	data      []byte
}

// maxSSELine bounds one line of the stream: an event is at most the
// server's --max-event-bytes (1 MiB by default) once shown as JSON.
const maxSSELine = 4 << 20

var errSSELine = errors.New("tail: a line of the event stream exceeds 4 MiB")

// sseReader splits an event stream into messages (the HTML standard's
// format: "field: value" lines, a blank line dispatches).
type sseReader struct {
	r    *bufio.Reader
	data bytes.Buffer
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next message; its data is valid until the next call.
func (s *sseReader) next() (sseMessage, error) {
	var m sseMessage
	s.data.Reset()
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			return sseMessage{}, err
		}
		if len(line) == 0 {
			if m.id == "" && m.event == "" && !hasData {
				continue // blank lines between messages
			}
			m.data = s.data.Bytes()
			return m, nil
		}
		if line[0] == ':' {
			continue // a comment
		}
		k, v, _ := bytes.Cut(line, []byte(":"))
		v = bytes.TrimPrefix(v, []byte(" "))
		switch string(k) {
		case "id":
			m.id = string(v)
		case "event":
			m.event = string(v)
		case "data":
			if hasData {
				s.data.WriteByte('\n')
			}
			s.data.Write(v)
			hasData = true
		}
	}
}

// readLine returns one line without its end ("\n" or "\r\n"), bounded.
func (s *sseReader) readLine() ([]byte, error) {
	var long []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long)+len(chunk) > maxSSELine {
				return nil, errSSELine
			}
			long = append(long, chunk...)
			continue
		}
		if err != nil {
			if err == io.EOF && (len(chunk) > 0 || len(long) > 0) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if long != nil {
			chunk = append(long, chunk...)
		}
		if len(chunk) > maxSSELine {
			return nil, errSSELine
		}
		return bytes.TrimRight(chunk, "\r\n"), nil
	}
}
