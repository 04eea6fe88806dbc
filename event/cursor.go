package event

// SeqsPerBlock is the number of sequence numbers reserved for each block
// (one durable log record holding a batch of events). An event's Seq is
// block*SeqsPerBlock + position, position counting from 1, so sequences are
// strictly increasing in log order across a whole chronicle, are never
// reused, and read in decimal as "block, then position": 1200004 is the
// fourth event of block 12.
const SeqsPerBlock = 100_000

// MaxBlockEvents is the largest number of events one block may hold.
const MaxBlockEvents = SeqsPerBlock - 1

// MakeSeq returns the sequence of the event at position pos (from 1) of block.
func MakeSeq(block uint64, pos int) uint64 { return block*SeqsPerBlock + uint64(pos) }

// SplitSeq returns the block and position of seq.
func SplitSeq(seq uint64) (block uint64, pos int) {
	return seq / SeqsPerBlock, int(seq % SeqsPerBlock)
}

// Cursor addresses a position in a story: the events after Seq.
type Cursor struct {
	Story string
	Seq   uint64
}
