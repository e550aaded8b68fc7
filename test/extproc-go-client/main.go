// extproc-go-client plays one FULL_DUPLEX_STREAMED ext_proc exchange against
// an ExternalProcessor with grpc-go and Envoy's own generated Go types
// (go-control-plane), a client that shares no code with the EPP's: request
// headers, a body in 16 KiB chunks, then response headers and a body, the
// half-close; it prints one JSON object describing what came back.
//
//	extproc-go-client HOST:PORT BODY_BYTES
//
// Exits 1 when the exchange fails at the gRPC level.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type result struct {
	Replies      []string          `json:"replies"`
	SetHeaders   map[string]string `json:"setHeaders"`
	Metadata     map[string]string `json:"metadata"`
	BodyBack     int               `json:"bodyBack"`
	BodyEqual    bool              `json:"bodyEqual"`
	ResponseBack int               `json:"responseBack"`
	Status       string            `json:"status"`
}

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

func main() {
	size, _ := strconv.Atoi(os.Args[2])
	conn, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	prompt := strings.Repeat("lorem ipsum ", size/12+1)
	body := []byte(`{"model":"m","max_tokens":4,"prompt":"` + prompt[:max(0, size-40)] + `"}`)
	mode := &extprocv3.ProtocolConfiguration{
		RequestBodyMode:  1 << 2, // FULL_DUPLEX_STREAMED
		ResponseBodyMode: 1 << 2,
	}
	send := func(r *extprocv3.ProcessingRequest) {
		if err := st.Send(r); err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(1)
		}
	}
	send(&extprocv3.ProcessingRequest{
		ProtocolConfig: mode,
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
				hv(":method", "POST"), hv(":path", "/v1/completions"), hv("content-type", "application/json"),
			}},
		}},
	})
	for o := 0; o < len(body); o += 16 * 1024 {
		end := min(o+16*1024, len(body))
		send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{
			RequestBody: &extprocv3.HttpBody{Body: body[o:end], EndOfStream: end == len(body)},
		}})
	}
	res := result{SetHeaders: map[string]string{}, Metadata: map[string]string{}}
	var back []byte
	answer := []byte(`{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}`)
	for {
		r, err := st.Recv()
		if err != nil {
			res.Status = status.Code(err).String()
			if err.Error() == "EOF" {
				res.Status = "OK"
			}
			break
		}
		switch x := r.Response.(type) {
		case *extprocv3.ProcessingResponse_RequestHeaders:
			res.Replies = append(res.Replies, "request_headers")
			for _, h := range x.RequestHeaders.GetResponse().GetHeaderMutation().GetSetHeaders() {
				res.SetHeaders[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
			}
			for ns, v := range r.GetDynamicMetadata().GetFields() {
				for k, f := range v.GetStructValue().GetFields() {
					res.Metadata[ns+"/"+k] = f.GetStringValue()
				}
			}
		case *extprocv3.ProcessingResponse_RequestBody:
			res.Replies = append(res.Replies, "request_body")
			sr := x.RequestBody.GetResponse().GetBodyMutation().GetStreamedResponse()
			back = append(back, sr.GetBody()...)
			if sr.GetEndOfStream() {
				res.BodyBack = len(back)
				res.BodyEqual = string(back) == string(body)
				send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
					ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
						hv(":status", "200"), hv("content-type", "application/json"),
					}}},
				}})
				send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{
					ResponseBody: &extprocv3.HttpBody{Body: answer, EndOfStream: true},
				}})
			}
		case *extprocv3.ProcessingResponse_ResponseHeaders:
			res.Replies = append(res.Replies, "response_headers")
		case *extprocv3.ProcessingResponse_ResponseBody:
			res.Replies = append(res.Replies, "response_body")
			sr := x.ResponseBody.GetResponse().GetBodyMutation().GetStreamedResponse()
			res.ResponseBack += len(sr.GetBody())
			if sr.GetEndOfStream() {
				if err := st.CloseSend(); err != nil {
					fmt.Fprintln(os.Stderr, "close:", err)
					os.Exit(1)
				}
			}
		case *extprocv3.ProcessingResponse_ImmediateResponse:
			res.Replies = append(res.Replies, "immediate_response")
		default:
			res.Replies = append(res.Replies, fmt.Sprintf("%T", x))
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}
