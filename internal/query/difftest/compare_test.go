package difftest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chronostream/chronostream/internal/testutil/jsondiff"
)

// answer is what a server said to one /query request.
type answer struct {
	status int
	body   []byte
	docs   []any // the body's JSON values (several when chunked), numbers as json.Number
	err    error // transport error, or a body that is not JSON
}

var client = &http.Client{Timeout: 30 * time.Second}

// ask sends one query the way the entry says: GET or POST form, db, epoch, chunked.
func ask(base string, e entry, q, epoch string) answer {
	v := url.Values{"q": {q}}
	if e.db != "-" {
		v.Set("db", e.db)
	}
	if epoch != "" {
		v.Set("epoch", epoch)
	}
	if e.chunked {
		v.Set("chunked", "true")
	}
	var req *http.Request
	var err error
	if e.method == "POST" {
		req, err = http.NewRequest("POST", base+"/query", strings.NewReader(v.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest("GET", base+"/query?"+v.Encode(), nil)
	}
	if err != nil {
		return answer{err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	a.body, a.err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if a.err != nil {
		return a
	}
	a.docs, a.err = jsondiff.Decode(a.body)
	return a
}

// floatTolerance is the only normalization: numbers that are not equal as
// written are compared as float64 with this relative tolerance, because
// sums and means may add the same values in another order.
const floatTolerance = 1e-9

// diff says where two answers differ, or "" if they are the same: the
// status, then the JSON documents compared by jsondiff (object keys in any
// order, arrays in order, strings exactly, numbers as above).
func diff(want, got answer) string {
	if want.err != nil {
		return "influxdb: " + want.err.Error()
	}
	if got.err != nil {
		return "chronostream: " + got.err.Error()
	}
	if want.status != got.status {
		return fmt.Sprintf("status %d, want %d", got.status, want.status)
	}
	if len(want.docs) != len(got.docs) {
		return fmt.Sprintf("%d JSON documents, want %d", len(got.docs), len(want.docs))
	}
	for i := range want.docs {
		if d := jsondiff.Diff(fmt.Sprintf("doc[%d]", i), want.docs[i], got.docs[i], floatTolerance); d != "" {
			return d
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("… (%d bytes)", len(s))
}
