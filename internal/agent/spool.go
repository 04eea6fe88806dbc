package agent

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Record is one spooled event: its story, its index in the agent's stream
// for that story, and the JSON payload sent to the server.
type Record struct {
	Story   string
	Index   uint64
	Payload []byte

	end Pos // the position after it, when read by Next
}

// Pos is a position in the spool: a segment and a byte offset in it.
type Pos struct {
	Seg uint64 `json:"seg"`
	Off int64  `json:"off"`
}

func (p Pos) less(q Pos) bool { return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off }

// Spool is the agent's bounded on-disk queue: a directory of segment files
// appended with fsync, read in order by the sender, and trimmed from the
// front once the server has acknowledged what they hold. When appending
// would exceed the size bound, the oldest segments are dropped, and the
// drop is counted and reported. Only one process may use a directory.
//
// Layout: NNNNNNNNNNNNNNNNNNNN.seg segments of framed records, and
// state.json: the agent's stream id, the read cursor (everything before it
// is acknowledged) and the next stream index of each story.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	log      *slog.Logger
	unlock   func()

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on append and on close
	segs     []*segment    // oldest first; the last is the one appended to
	active   *os.File
	total    int64
	cursor   Pos // acknowledged up to here
	handed   Pos // given to the sender up to here
	next     map[string]uint64
	stream   string
	host     string
	dropped  uint64 // records dropped unacknowledged because the spool was full
	evicted  uint64 // drops that took records the sender had in flight
	closed   bool   // no more appends: Next reports io.EOF once empty
	stateErr error
}

type segment struct {
	id    uint64
	size  int64
	count int // records
}

type spoolState struct {
	Stream string            `json:"stream"`
	Host   string            `json:"host,omitempty"`
	Cursor Pos               `json:"cursor"`
	Next   map[string]uint64 `json:"next"`
}

const (
	recordHeader = 8 // length and CRC-32C, little endian
	maxRecord    = 16 << 20
	stateFile    = "state.json"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrSpoolClosed is returned by Append after CloseWriting.
var ErrSpoolClosed = errors.New("agent spool: closed")

// OpenSpool opens (or creates) the spool in dir, bounded to maxBytes of
// segments of at most segBytes each. It recovers from a crash: a record
// torn by one is cut off, and the next index of each story is the larger
// of the saved one and one past the newest spooled record.
func OpenSpool(dir string, maxBytes, segBytes int64, log *slog.Logger) (*Spool, error) {
	return openSpool(dir, maxBytes, segBytes, log, "")
}

// openSpool opens the spool of host: its stream id names the host, and a
// spool last used by another host (a copied disk or VM image) gets a new
// stream id, so that two hosts never share one (the server would take the
// second one's events for duplicates of the first's).
func openSpool(dir string, maxBytes, segBytes int64, log *slog.Logger, host string) (*Spool, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("agent spool: size bound %d must be positive", maxBytes)
	}
	if segBytes <= 0 || segBytes > maxBytes {
		segBytes = max(min(maxBytes/8, 8<<20), min(maxBytes, 4096))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("agent spool: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("agent spool %s: %w", dir, err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, log: log, unlock: unlock,
		changed: make(chan struct{}), next: map[string]uint64{}, host: host}
	if err := s.recover(); err != nil {
		unlock()
		return nil, err
	}
	return s, nil
}

// streamHost is host fit for a stream id (A-Z a-z 0-9 - _), short, with a
// trailing '-'; "" for no host.
func streamHost(host string) string {
	b := []byte(host)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	if len(b) == 0 {
		return ""
	}
	return string(b) + "-"
}

func (s *Spool) segPath(id uint64) string { return filepath.Join(s.dir, fmt.Sprintf("%020d.seg", id)) }

func (s *Spool) recover() error {
	var st spoolState
	switch data, err := os.ReadFile(filepath.Join(s.dir, stateFile)); {
	case err == nil:
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("agent spool: %s: %w", stateFile, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("agent spool: %w", err)
	}
	s.stream = st.Stream
	if s.host == "" {
		s.host = st.Host
	}
	if s.stream != "" && st.Host != "" && s.host != st.Host {
		s.log.Warn("agent spool: last used by another host (a copied disk?); starting a new stream",
			"spool_host", st.Host, "host", s.host, "old_stream", s.stream)
		s.stream = ""
	}
	if s.stream == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		s.stream = "agent-" + streamHost(s.host) + hex.EncodeToString(b[:])
	}
	for k, v := range st.Next {
		s.next[k] = v
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("agent spool: %w", err)
	}
	var ids []uint64
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		if id, err := strconv.ParseUint(name, 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i, id := range ids {
		if id < st.Cursor.Seg { // acknowledged; the crash came before its removal
			_ = os.Remove(s.segPath(id))
			continue
		}
		seg, err := s.scan(id, i == len(ids)-1)
		if err != nil {
			return err
		}
		s.segs = append(s.segs, seg)
		s.total += seg.size
	}
	s.cursor = st.Cursor
	if len(s.segs) == 0 {
		s.segs = []*segment{{id: max(st.Cursor.Seg, 1)}}
		s.cursor = Pos{Seg: s.segs[0].id}
	} else if first := s.segs[0]; s.cursor.Seg < first.id {
		s.cursor = Pos{Seg: first.id}
	}
	if first := s.segs[0]; s.cursor.Seg == first.id && s.cursor.Off > first.size {
		s.cursor.Off = first.size
	}
	s.handed = s.cursor
	last := s.segs[len(s.segs)-1]
	f, err := os.OpenFile(s.segPath(last.id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("agent spool: %w", err)
	}
	s.active = f
	return s.saveStateLocked()
}

// scan validates a segment, counts its records and notes the newest index
// of each story. A torn or corrupt record ends the segment: it and what
// follows are cut off (a crash can only tear the last append).
func (s *Spool) scan(id uint64, last bool) (*segment, error) {
	path := s.segPath(id)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent spool: %w", err)
	}
	defer f.Close()
	seg := &segment{id: id}
	r := bufio.NewReader(f)
	for {
		rec, n, err := readRecord(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			// A crash tears only the last append; damage anywhere else
			// loses records, counted as dropped: the bad one and those
			// after it (as far as their framing still tells).
			lost := 0
			if !last {
				lost = 1 + countAfterDamage(path, seg.size)
				s.dropped += uint64(lost)
			}
			s.log.Warn("agent spool: cutting a damaged segment at its last good record",
				"segment", path, "offset", seg.size, "err", err, "last_segment", last, "records_lost", lost)
			if err := os.Truncate(path, seg.size); err != nil {
				return nil, fmt.Errorf("agent spool: %w", err)
			}
			break
		}
		seg.size += n
		seg.count++
		if rec.Index+1 > s.next[rec.Story] {
			s.next[rec.Story] = rec.Index + 1
		}
	}
	return seg, nil
}

// countAfterDamage counts the records that follow the damaged one at off,
// skipping it by its length when that is plausible.
func countAfterDamage(path string, off int64) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	var h [recordHeader]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return 0
	}
	n := int64(binary.LittleEndian.Uint32(h[:4]))
	next := off + recordHeader + n
	if n > maxRecord || next > st.Size() {
		return 0
	}
	r := bufio.NewReader(io.NewSectionReader(f, next, st.Size()-next))
	count := 0
	for {
		if _, _, err := readRecord(r); err != nil {
			return count
		}
		count++
	}
}

func encodeRecord(dst []byte, r Record) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(r.Story)))
	body = append(body, r.Story...)
	body = binary.AppendUvarint(body, r.Index)
	body = append(body, r.Payload...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(body, crcTable))
	return append(dst, body...)
}

// readRecord reads one framed record and returns it with its size on disk.
func readRecord(r *bufio.Reader) (Record, int64, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return Record{}, 0, io.EOF
		}
		return Record{}, 0, fmt.Errorf("torn record header: %w", err)
	}
	n := binary.LittleEndian.Uint32(h[:4])
	if n > maxRecord {
		return Record{}, 0, fmt.Errorf("record length %d out of range", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Record{}, 0, fmt.Errorf("torn record: %w", err)
	}
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(h[4:]) {
		return Record{}, 0, errors.New("record checksum mismatch")
	}
	sl, k := binary.Uvarint(body)
	if k <= 0 || uint64(len(body)-k) < sl {
		return Record{}, 0, errors.New("bad story length")
	}
	story := string(body[k : k+int(sl)])
	rest := body[k+int(sl):]
	idx, k2 := binary.Uvarint(rest)
	if k2 <= 0 {
		return Record{}, 0, errors.New("bad index")
	}
	return Record{Story: story, Index: idx, Payload: rest[k2:]}, int64(recordHeader + n), nil
}

// Stream is the agent's stream id, kept across restarts.
func (s *Spool) Stream() string { return s.stream }

// Dropped is the number of records dropped unsent because the spool was full.
func (s *Spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Len is the number of records not yet acknowledged, and their size in bytes.
func (s *Spool) Len() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		records += seg.count
	}
	return records, s.total
}

// Append numbers each event in its story's stream and appends them with
// one fsync. When the spool would exceed its bound, the oldest segments are
// dropped first; Append returns how many unsent records that dropped.
func (s *Spool) Append(events []Record) (dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrSpoolClosed
	}
	// Indexes are taken for good only once the append is durable: a
	// failed one leaves no gap in its stories' streams.
	var buf []byte
	taken := map[string]uint64{}
	for i := range events {
		story := events[i].Story
		events[i].Index = s.next[story] + taken[story]
		taken[story]++
		buf = encodeRecord(buf, events[i])
	}
	n := int64(len(buf))
	if n > s.maxBytes {
		return 0, fmt.Errorf("agent spool: a sample of %d bytes exceeds the spool's bound of %d", n, s.maxBytes)
	}
	act := s.segs[len(s.segs)-1]
	if act.size > 0 && act.size+n > s.segBytes {
		if err := s.rotateLocked(); err != nil {
			return 0, err
		}
	}
	for s.total+n > s.maxBytes && len(s.segs) > 1 {
		dropped += s.dropOldestLocked()
	}
	if _, err := s.active.Write(buf); err != nil {
		return dropped, s.failedWriteLocked(err)
	}
	if err := s.active.Sync(); err != nil {
		return dropped, s.failedWriteLocked(err)
	}
	for story, k := range taken {
		s.next[story] += k
	}
	act = s.segs[len(s.segs)-1]
	act.size += n
	act.count += len(events)
	s.total += n
	if dropped > 0 {
		s.dropped += uint64(dropped)
		if err := s.saveStateLocked(); err != nil {
			return dropped, err
		}
	}
	s.notifyLocked()
	return dropped, nil
}

// failedWriteLocked undoes a partial append, so that the next append does
// not follow a torn record.
func (s *Spool) failedWriteLocked(err error) error {
	act := s.segs[len(s.segs)-1]
	_ = s.active.Truncate(act.size)
	return fmt.Errorf("agent spool: append: %w", err)
}

func (s *Spool) rotateLocked() error {
	last := s.segs[len(s.segs)-1]
	seg := &segment{id: last.id + 1}
	f, err := os.OpenFile(s.segPath(seg.id), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("agent spool: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	_ = s.active.Close()
	s.active = f
	s.segs = append(s.segs, seg)
	return nil
}

// dropOldestLocked removes the oldest segment and returns how many of its
// records were not acknowledged. If the sender had taken some of them (it
// is waiting for the server), it must abandon them: see Evictions.
func (s *Spool) dropOldestLocked() int {
	seg := s.segs[0]
	s.segs = s.segs[1:]
	s.total -= seg.size
	var from int64 // the cursor is never past the oldest segment
	if s.cursor.Seg == seg.id {
		from = s.cursor.Off
	}
	unacked := s.countFrom(seg, from)
	if s.cursor.less(s.handed) {
		s.evicted++
	}
	_ = os.Remove(s.segPath(seg.id))
	next := Pos{Seg: s.segs[0].id}
	if s.handed.less(next) {
		s.handed = next
	}
	if s.cursor.less(next) {
		s.cursor = next
	}
	if unacked > 0 {
		s.log.Warn("agent spool full: dropped the oldest unsent samples",
			"records", unacked, "segment", seg.id, "max_bytes", s.maxBytes, "dropped_total", s.dropped+uint64(unacked))
	}
	return unacked
}

// Evictions counts the drops that took records the sender had taken and
// not committed. When it changes, the sender abandons what it holds and
// takes again from Next (after Rewind).
func (s *Spool) Evictions() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.evicted
}

// countFrom counts the records of seg from byte off on.
func (s *Spool) countFrom(seg *segment, off int64) int {
	f, err := os.Open(s.segPath(seg.id))
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0
	}
	r := bufio.NewReader(io.LimitReader(f, seg.size-off))
	n := 0
	for {
		if _, _, err := readRecord(r); err != nil {
			return n
		}
		n++
	}
}

func (s *Spool) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Changed returns a channel closed at the next append or close.
func (s *Spool) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Next returns up to max records the sender has not taken, in order, and
// the position after them, to Commit once they are acknowledged. It
// returns no records when there are none; io.EOF when there are none and
// the spool is closed for writing.
func (s *Spool) Next(max int) ([]Record, Pos, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	pos := s.handed
	for _, seg := range s.segs {
		if seg.id < pos.Seg {
			continue
		}
		if seg.id > pos.Seg {
			pos = Pos{Seg: seg.id}
		}
		if pos.Off >= seg.size {
			continue
		}
		f, err := os.Open(s.segPath(seg.id))
		if err != nil {
			return nil, s.handed, fmt.Errorf("agent spool: %w", err)
		}
		if _, err := f.Seek(pos.Off, io.SeekStart); err != nil {
			f.Close()
			return nil, s.handed, fmt.Errorf("agent spool: %w", err)
		}
		r := bufio.NewReader(io.LimitReader(f, seg.size-pos.Off))
		for len(out) < max {
			rec, n, err := readRecord(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				f.Close()
				return nil, s.handed, fmt.Errorf("agent spool: segment %d at %d: %w", seg.id, pos.Off, err)
			}
			pos.Off += n
			rec.end = pos
			out = append(out, rec)
		}
		f.Close()
		if len(out) >= max {
			break
		}
	}
	s.handed = pos
	if len(out) == 0 && s.closed {
		return nil, pos, io.EOF
	}
	return out, pos, nil
}

// Cursor is the position up to which everything is acknowledged (or was
// dropped).
func (s *Spool) Cursor() Pos {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}

// Undrop takes back n records from the dropped count: records the spool
// dropped while the sender had them in flight, which the server had
// acknowledged after all.
func (s *Spool) Undrop(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropped -= min(s.dropped, uint64(n))
}

// Rewind makes the records taken and not committed available to Next
// again (after the sender gave up on them).
func (s *Spool) Rewind() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handed = s.cursor
}

// Commit records that everything before pos is acknowledged: segments
// wholly before it are removed.
func (s *Spool) Commit(pos Pos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cursor.less(pos) {
		return nil
	}
	s.cursor = pos
	for len(s.segs) > 1 && (s.segs[0].id < s.cursor.Seg || s.segs[0].id == s.cursor.Seg && s.cursor.Off >= s.segs[0].size) {
		seg := s.segs[0]
		s.segs = s.segs[1:]
		s.total -= seg.size
		if s.cursor.Seg == seg.id {
			s.cursor = Pos{Seg: s.segs[0].id}
		}
		if err := s.saveStateLocked(); err != nil { // before the removal: never a cursor into a missing segment's past
			return err
		}
		_ = os.Remove(s.segPath(seg.id))
	}
	// The active segment, wholly acknowledged, starts over so the spool
	// does not keep sent data on disk.
	if act := s.segs[0]; len(s.segs) == 1 && s.cursor.Seg == act.id && s.cursor.Off >= act.size && act.size > 0 {
		if err := s.rotateLocked(); err != nil {
			return err
		}
		s.segs = s.segs[1:]
		s.total -= act.size
		s.cursor = Pos{Seg: s.segs[0].id}
		if s.handed.less(s.cursor) {
			s.handed = s.cursor
		}
		if err := s.saveStateLocked(); err != nil {
			return err
		}
		_ = os.Remove(s.segPath(act.id))
		return nil
	}
	return s.saveStateLocked()
}

// saveStateLocked writes state.json atomically (temporary file, fsync,
// rename, fsync of the directory).
func (s *Spool) saveStateLocked() error {
	data, err := json.Marshal(spoolState{Stream: s.stream, Host: s.host, Cursor: s.cursor, Next: s.next})
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("agent spool: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, stateFile))
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("agent spool: save state: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("agent spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("agent spool: sync %s: %w", dir, err)
	}
	return nil
}

// CloseWriting ends appends: Next reports io.EOF once the sender has
// taken everything.
func (s *Spool) CloseWriting() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.notifyLocked()
	}
}

// Close saves the state and releases the directory.
func (s *Spool) Close() error {
	s.CloseWriting()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.saveStateLocked()
	if s.active != nil {
		if cerr := s.active.Close(); err == nil {
			err = cerr
		}
		s.active = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	return err
}
