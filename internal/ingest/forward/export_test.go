package forward

// SetTestHookFrame sets the hook called on every framing attempt of a
// connection; nil removes it.
func SetTestHookFrame(f func()) { testHookFrame = f }

// SetTestHookDecode sets the hook called before a message is decoded.
func SetTestHookDecode(f func()) { testHookDecode = f }
