package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// apiClient posts GraphQL requests to the server over keep-alive
// connections.
type apiClient struct {
	endpoint string
	base     string
	hc       *http.Client
}

// newAPIClient returns a client keeping up to conns idle connections; when
// limit is set, it also never opens more than conns at once.
func newAPIClient(base string, conns int, limit bool) *apiClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if limit {
		tr.MaxConnsPerHost = conns
	}
	return &apiClient{endpoint: base + "/graphql", base: base, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// warm opens up to n connections by sending n simultaneous liveness probes,
// which leave them idle in the pool for the scenario to reuse.
func (c *apiClient) warm(ctx context.Context, n int) {
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-gate
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/livez", nil)
			if resp, err := c.hc.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	close(gate)
	wg.Wait()
}

// close lets go of the idle connections.
func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// gqlError is one entry of a GraphQL response's errors.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

// body returns a GraphQL request body; vars may be nil.
func body(query string, vars map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return b
}

// signupBody is the sign-up mutation for one shift, built without a JSON
// encoder since the load generator shares the CPU with the server.
var signupPrefix = func() []byte {
	q, _ := json.Marshal(signUpMutation)
	return append(append([]byte(`{"query":`), q...), `,"variables":{"s":"`...)
}()

func signupBody(shiftID string) []byte {
	b := make([]byte, 0, len(signupPrefix)+len(shiftID)+3)
	b = append(append(b, signupPrefix...), shiftID...)
	return append(b, `"}}`...)
}

// post sends one GraphQL request as the member with token and decodes its
// data into out. It returns "" on success, the first GraphQL error's code,
// or a code naming a transport or HTTP failure.
func (c *apiClient) post(ctx context.Context, token string, payload []byte, out any) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(payload))
	if err != nil {
		return "REQUEST"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "CANCELLED"
		}
		return "TRANSPORT"
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "TRANSPORT"
	}
	var r struct {
		Data   any        `json:"data"`
		Errors []gqlError `json:"errors"`
	}
	r.Data = out
	jerr := json.Unmarshal(raw, &r)
	switch {
	case len(r.Errors) > 0 && r.Errors[0].Extensions.Code != "":
		return r.Errors[0].Extensions.Code
	case len(r.Errors) > 0:
		return "GRAPHQL"
	case resp.StatusCode != http.StatusOK:
		return "HTTP_" + strconv.Itoa(resp.StatusCode)
	case jerr != nil:
		return "BAD_JSON"
	}
	return ""
}

// signupAnswer is what the sign-up mutation returns.
type signupAnswer struct {
	SignUpForShift *struct {
		ID               string `json:"id"`
		Status           string `json:"status"`
		WaitlistPosition *int   `json:"waitlistPosition"`
	} `json:"signUpForShift"`
}

// signUp signs a member up for a shift.
func (c *apiClient) signUp(ctx context.Context, m member, shiftID string) (signupAnswer, string) {
	var a signupAnswer
	code := c.post(ctx, m.Token, signupBody(shiftID), &a)
	if code == "" && a.SignUpForShift == nil {
		code = "NO_DATA"
	}
	return a, code
}
