// Package relay streams DICOMweb answers from a node to the hub over the
// node's outbound NATS link, with flow control, so that a researcher can
// read a node's images through the hub while the node never accepts a
// connection.
//
// Protocol. For each HTTP request the hub relays:
//
//  1. The hub picks a random stream id (fed.NewID), subscribes to
//     fed.RelayDataSubject(node, stream) ("mosaic.node.<id>.relay.<stream>",
//     inside the node's publish allowance, so only that node can write
//     there) and sends a fed.TaskRelay task sealed with the hub's key on
//     fed.TaskSubject(node); its body is a fed.RelayRequest naming the
//     stream, the method, path, query and the few request headers that
//     matter (Accept, Range, If-None-Match, If-Range).
//  2. The node subscribes to fed.RelayCreditSubject(node, stream)
//     ("mosaic.relay.<id>.<stream>", which only that node may subscribe
//     to), runs the request and answers on the data subject with a
//     sequence of messages, each a kind byte, a 4-byte big-endian
//     sequence number and a payload:
//     - 'h' head, sequence 0: JSON {"status","header"};
//     - 'd' data, sequences 1, 2, ...: at most ChunkSize bytes of body;
//     - 'e' end, the next sequence: JSON {"bytes"}, the body's length;
//     - 'x' error, the next sequence: JSON {"error"}, a generic reason:
//     the answer is broken and must not pass as complete.
//  3. The node may send data chunk n only when n <= the credit the hub
//     granted. The credit starts at Window chunks without any message;
//     the hub raises it on the credit subject ('c' and the new limit,
//     4 bytes) as its HTTP client reads, so the node never has more than
//     Window chunks in flight and neither side holds more than about
//     Window*ChunkSize bytes per stream, whatever the object's size. A
//     'x' message on the credit subject cancels the stream (the HTTP
//     client went away): the node's handler sees its context end. A
//     cancel sent before the node subscribed is lost, so a hub whose
//     client left before the head sends it again at the node's first
//     message (the node subscribes before it sends anything); a node
//     that hears nothing gives up after a minute without credit.
//
// The hub accepts messages only in sequence: a gap, a repeat or an
// unknown kind ends the stream as failed. Messages on a stream the hub
// does not know reach nobody (the hub subscribes per stream, to a random
// id). The transport authenticates the chunks (only node <id> may publish
// below mosaic.node.<id>.), and the hub's signature authenticates the
// request. A failure after the head was sent aborts the hub's HTTP
// response (the client sees a broken transfer, never a short body that
// looks complete); before it, the client gets a JSON error: 504 when the
// node does not answer in time, 502 when its answer is broken, 503 when
// too many requests are relayed at once.
package relay

import (
	"encoding/binary"
	"errors"
	"mime"
	"net/http"
)

// Protocol constants, the same at hub and node.
const (
	// ChunkSize is the largest body chunk: well under NATS's default
	// 1 MB maximum payload.
	ChunkSize = 256 << 10
	// Window is the credit a stream starts with, in chunks, and how far
	// ahead of its client's reading the hub keeps it.
	Window = 8
	// maxHead bounds the head message's JSON.
	maxHead = 64 << 10
)

// Message kinds.
const (
	kindHead   = 'h'
	kindData   = 'd'
	kindEnd    = 'e'
	kindError  = 'x'
	kindCredit = 'c'
	kindCancel = 'x'
)

const frameHeader = 5

// frame prepends the kind and sequence number to payload into buf.
func frame(buf []byte, kind byte, seq uint32, payload []byte) []byte {
	buf = append(buf[:0], kind, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(buf[1:], seq)
	return append(buf, payload...)
}

var errFrame = errors.New("relay: malformed message")

// parseFrame splits a message into kind, sequence and payload.
func parseFrame(b []byte) (byte, uint32, []byte, error) {
	if len(b) < frameHeader {
		return 0, 0, nil, errFrame
	}
	return b[0], binary.BigEndian.Uint32(b[1:frameHeader]), b[frameHeader:], nil
}

type head struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
}

type end struct {
	Bytes int64 `json:"bytes"`
}

type failure struct {
	Error string `json:"error"`
}

// requestHeaders are the request headers relayed to the node.
var requestHeaders = []string{"Accept", "Range", "If-None-Match", "If-Range"}

// passiveTypes are the media types a relayed answer may have on the
// hub's origin: DICOMweb's and JSON, never anything a browser would run
// or render as a page (HTML, SVG, XML, scripts). multipart/related must
// also say its parts are one of them.
var passiveTypes = map[string]bool{
	"application/dicom+json": true, "application/json": true, "application/dicom": true,
	"application/octet-stream": true, "application/zip": true, "text/plain": true,
	"image/jpeg": true, "image/png": true, "image/gif": true, "image/jp2": true, "image/jls": true,
	"image/jxl": true, "image/dicom-rle": true, "image/x-dicom-rle": true, "video/mp4": true, "video/mpeg": true,
}

// confine makes a node's answer harmless on the hub's origin, where the
// hub's pages, session cookie and forms live: a media type outside
// passiveTypes becomes application/octet-stream, the browser may not
// guess another (nosniff), and a sandboxing policy forbids scripts,
// plugins and requests should the answer be opened as a page. Patient
// data is kept out of shared caches and of the browser's disk cache.
func confine(h http.Header) {
	if ct := h.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		ok := err == nil && passiveTypes[mt]
		if err == nil && mt == "multipart/related" {
			inner, _, ierr := mime.ParseMediaType(params["type"])
			ok = ierr == nil && passiveTypes[inner] && params["boundary"] != ""
		}
		if !ok {
			h.Set("Content-Type", "application/octet-stream")
		}
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "private, no-store")
}

// answerHeaders are the answer headers the hub passes on from the node;
// any other (Set-Cookie above all) is dropped.
var answerHeaders = []string{
	"Content-Type", "Content-Length", "Content-Range", "Content-Encoding",
	"Content-Disposition", "Accept-Ranges", "ETag", "Last-Modified",
	"Cache-Control", "Vary", "Warning", "Retry-After",
}
