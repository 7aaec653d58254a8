package embedrank

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/embedrank/embedrank/clients/go/gen/embedrankv1"
)

// Error is an error reported by the server: the status of a failed call, or
// the error item of one request on a stream (the stream itself goes on).
// Use errors.As to get it; status.Code(err) also works, through GRPCStatus.
type Error struct {
	// Code is the gRPC status code, e.g. codes.InvalidArgument.
	Code codes.Code
	// Message is the server's message.
	Message string
	// Field is the request field at fault, e.g. "texts[3]", when the server
	// named one (a stream error item, or a google.rpc.BadRequest detail);
	// empty otherwise.
	Field string

	st *status.Status // the original status, when the error came from one
}

func (e *Error) Error() string {
	if e.Field != "" && !strings.HasPrefix(e.Message, e.Field) {
		return fmt.Sprintf("embedrank: %s: %s (field %s)", e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("embedrank: %s: %s", e.Code, e.Message)
}

// GRPCStatus returns the error as a gRPC status, with the server's details
// when there were any.
func (e *Error) GRPCStatus() *status.Status {
	if e.st != nil {
		return e.st
	}
	return status.New(e.Code, e.Message)
}

// wrapErr turns a gRPC status error into an *Error; other errors pass
// through.
func wrapErr(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), st: st}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			e.Field = br.GetFieldViolations()[0].GetField()
			break
		}
	}
	return e
}

// streamErr turns a stream's error item into an *Error.
func streamErr(se *pb.StreamError) *Error {
	return &Error{Code: codes.Code(uint32(se.GetCode())), Message: se.GetMessage(), Field: se.GetField()}
}
