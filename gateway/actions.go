package gateway

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
)

// fileChunk is how many bytes of a file go downstream at once.
const fileChunk = 64 << 10

// kv is a header field whose value is a template.
type kv struct {
	name string
	val  *template
}

// edits is a compiled HeaderEdits.
type edits struct {
	remove   []string
	set, add []kv
}

func newEdits(e *HeaderEdits) *edits {
	if e == nil {
		return nil
	}
	return &edits{remove: e.Remove, set: kvs(e.Set), add: kvs(e.Add)}
}

// kvs compiles fields (checked by validate) in name order.
func kvs(m map[string]string) []kv {
	var out []kv
	for _, n := range sortedNames(m) {
		out = append(out, kv{name: n, val: mustTemplate(m[n])})
	}
	return out
}

// apply edits f for the request of s.
func (e *edits) apply(f *header.Fields, s *proxy.Session) {
	if e == nil {
		return
	}
	for _, n := range e.remove {
		f.Remove(n)
	}
	var buf [256]byte
	for _, x := range e.set {
		f.Set(x.name, x.value(buf[:0], s))
	}
	for _, x := range e.add {
		f.Append(x.name, x.value(buf[:0], s))
	}
}

func (x *kv) value(buf []byte, s *proxy.Session) string {
	if x.val.plain {
		return x.val.String()
	}
	return string(x.val.expand(buf, s))
}

// rewriter is a compiled Rewrite.
type rewriter struct {
	prefix string
	re     *regexp.Regexp
	repl   string
}

func newRewriter(r *Rewrite) *rewriter {
	if r == nil {
		return nil
	}
	rw := &rewriter{prefix: r.Prefix, repl: r.Replacement}
	if r.Regex != "" {
		rw.re = regexp.MustCompile(r.Regex)
	}
	return rw
}

// apply rewrites the path of req, keeping its query.
func (rw *rewriter) apply(req *header.RequestHeader) {
	p := req.Path()
	var np []byte
	switch {
	case rw.re != nil:
		loc := rw.re.FindSubmatchIndex(p)
		if loc == nil {
			return
		}
		np = append(np, p[:loc[0]]...)
		np = rw.re.Expand(np, []byte(rw.repl), p, loc)
		np = append(np, p[loc[1]:]...)
	case bytes.HasPrefix(p, []byte(rw.prefix)):
		np = append(append(np, rw.repl...), p[len(rw.prefix):]...)
	default:
		return
	}
	if len(np) == 0 || np[0] != '/' {
		np = append([]byte{'/'}, np...)
	}
	if q := req.Query(); q != nil {
		np = append(append(np, '?'), q...)
	}
	req.SetTarget(string(np))
}

// redirect answers with a redirection.
type redirect struct {
	status   int
	location *template
}

func (rd *redirect) serve(s *proxy.Session, r *route) error {
	var f header.Fields
	f.Set("Location", string(rd.location.expand(nil, s)))
	f.Set("Content-Type", "text/plain; charset=utf-8")
	r.respEdits.apply(&f, s)
	return s.Respond(rd.status, &f, []byte(strconv.Itoa(rd.status)+" "+header.StatusText(rd.status)+"\n"))
}

// respond answers with a fixed response.
type respond struct {
	status  int
	headers []kv
	body    *template
}

func (rs *respond) serve(s *proxy.Session, r *route) error {
	var f header.Fields
	var buf [256]byte
	for _, x := range rs.headers {
		f.Append(x.name, x.value(buf[:0], s))
	}
	r.respEdits.apply(&f, s)
	var body []byte
	if rs.body.plain {
		body = []byte(rs.body.String())
	} else {
		body = rs.body.expand(nil, s)
	}
	return s.Respond(rs.status, &f, body)
}

// files answers with files from a directory, through http.ServeContent for the content type,
// conditional requests and ranges. The body goes through the proxy's response modules
// (compression) and out with the connection's write timeout, in pieces of fileChunk bytes
// read from the file: no sendfile, which would bypass both.
type files struct {
	root         string
	index        string
	cacheControl string
}

// conditionalFields are the request fields http.ServeContent reads.
var conditionalFields = []string{"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"}

func (fl *files) serve(s *proxy.Session, r *route) error {
	req := s.Req()
	if !req.IsMethod("GET") && !req.IsMethod("HEAD") {
		var f header.Fields
		f.Set("Allow", "GET, HEAD")
		return s.Respond(405, &f, []byte("405 Method Not Allowed\n"))
	}
	raw := string(req.Path())
	name, err := url.PathUnescape(raw)
	if err != nil || strings.IndexByte(name, 0) >= 0 || !strings.HasPrefix(name, "/") {
		return s.RespondError(400)
	}
	rel := strings.TrimPrefix(path.Clean(name), "/")
	if rel == "" {
		rel = "."
	}
	root, err := os.OpenRoot(fl.root)
	if err != nil {
		return s.RespondError(500)
	}
	defer root.Close()
	f, st, err := openRegular(root, rel)
	if err == nil && st.IsDir() {
		f.Close()
		if !strings.HasSuffix(raw, "/") {
			loc := raw + "/"
			if q := req.Query(); q != nil {
				loc += "?" + string(q)
			}
			var h header.Fields
			h.Set("Location", loc)
			return s.Respond(301, &h, nil)
		}
		rel = path.Join(rel, fl.index)
		f, st, err = openRegular(root, rel)
		if err == nil && st.IsDir() {
			f.Close()
			err = fs.ErrNotExist
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return s.RespondError(403)
		}
		return s.RespondError(404)
	}
	defer f.Close()
	if !st.Mode().IsRegular() {
		return s.RespondError(404)
	}
	hr := &http.Request{Method: string(req.Method()), Header: http.Header{}, URL: &url.URL{Path: name}}
	for _, n := range conditionalFields {
		req.Values(n, func(v []byte) bool {
			hr.Header.Add(n, string(v))
			return true
		})
	}
	w := &fileWriter{s: s, r: r, h: http.Header{}}
	w.h.Set("ETag", `"`+strconv.FormatInt(st.ModTime().UnixNano(), 36)+"-"+strconv.FormatInt(st.Size(), 36)+`"`)
	if fl.cacheControl != "" {
		w.h.Set("Cache-Control", fl.cacheControl)
	}
	http.ServeContent(w, hr, st.Name(), st.ModTime(), f)
	return w.finish()
}

// openRegular opens name under root without following it out of root, and without blocking
// on a FIFO; it returns the file and its information.
func openRegular(root *os.Root, name string) (*os.File, os.FileInfo, error) {
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, st, nil
}

// fileWriter is the http.ResponseWriter http.ServeContent writes to: it turns the head into a
// header.ResponseHeader and the body into WriteResponseBody calls of fileChunk bytes.
type fileWriter struct {
	s      *proxy.Session
	r      *route
	h      http.Header
	status int
	buf    []byte
	err    error
}

func (w *fileWriter) Header() http.Header { return w.h }

func (w *fileWriter) WriteHeader(code int) {
	if w.status != 0 || w.err != nil {
		return
	}
	w.status = code
	resp := header.NewResponse(code)
	for _, n := range slices.Sorted(maps.Keys(w.h)) {
		for _, v := range w.h[n] {
			resp.Append(n, v)
		}
	}
	w.r.respEdits.apply(&resp.Fields, w.s)
	w.err = w.s.WriteResponseHeader(resp, false)
}

func (w *fileWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	n := len(p)
	for len(p) > 0 && w.err == nil {
		if w.buf == nil {
			w.buf = make([]byte, 0, fileChunk)
		}
		c := min(len(p), fileChunk-len(w.buf))
		w.buf = append(w.buf, p[:c]...)
		p = p[c:]
		if len(w.buf) == fileChunk {
			w.err = w.s.WriteResponseBody(w.buf, false)
			w.buf = w.buf[:0]
		}
	}
	if w.err != nil {
		return 0, w.err
	}
	return n, nil
}

// ReadFrom is how http.ServeContent's copy of the file (or of one range of it) reaches the
// session: an *io.LimitedReader of the *os.File, at the range's offset, goes to
// Session.SendFile (sendfile(2) on a plain HTTP/1 connection when nothing transforms the body);
// anything else, such as the parts of a multipart range response, is copied through Write.
func (w *fileWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.err != nil {
		return 0, w.err
	}
	lr, ok := r.(*io.LimitedReader)
	var f *os.File
	if ok {
		f, ok = lr.R.(*os.File)
	}
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := min(lr.N, st.Size()-off)
	if len(w.buf) > 0 {
		if w.err = w.s.WriteResponseBody(w.buf, false); w.err != nil {
			return 0, w.err
		}
		w.buf = w.buf[:0]
	}
	if w.err = w.s.SendFile(f, off, n); w.err != nil {
		return 0, w.err
	}
	lr.N -= n
	return n, nil
}

// finish sends what is buffered and ends the response.
func (w *fileWriter) finish() error {
	if w.status == 0 {
		w.WriteHeader(200)
	}
	if w.err != nil {
		return w.err
	}
	return w.s.WriteResponseBody(w.buf, true)
}
