package daemonapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
)

func init() {
	for name, m := range map[string]method{
		"send_file":     sendFile,
		"download":      download,
		"create_invite": createInvite,
	} {
		methods[name] = m
	}
}

// sendResult is the result of send and send_file: a message queued
// because the server is unreachable is a result (with Queued), not an
// error.
func sendResult(msg *client.Message, err error) (any, error) {
	if err != nil && msg != nil && msg.State == client.Pending && errors.Is(err, client.ErrServerUnreachable) {
		return SendResult{Message: NewMessage(msg), Queued: toError(err)}, nil
	}
	if err != nil {
		return nil, err
	}
	return SendResult{Message: NewMessage(msg)}, nil
}

// noFiles is the error of a file method on a server without a profile
// directory (the web client's): it has no file system to read or write.
func noFiles(method string) *Error {
	return &Error{Code: CodeMethodNotFound, Message: fmt.Sprintf("method not offered: %q (this server has no file system)", method)}
}

// sendFile sends the file at an absolute path: the daemon reads it with
// its own rights, which are those of the caller (checkPeer).
func sendFile(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if s.dir == "" {
		return nil, noFiles("send_file")
	}
	var p SendFileParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	id, err := conversationID(p.Conversation)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(p.Path) {
		return nil, invalidParams("path %q: want an absolute path (the daemon does not share the caller's working directory)", p.Path)
	}
	opts := client.SendOptions{Caption: p.Caption, MediaType: p.MediaType}
	if p.ReplyTo != "" {
		if opts.ReplyTo, err = content.ParseMessageID(p.ReplyTo); err != nil {
			return nil, invalidParams("reply_to %q: want a full message id (32 hex digits)", p.ReplyTo)
		}
	}
	return sendResult(s.c.SendFile(ctx, id, p.Path, opts))
}

// download writes an attachment to an absolute path.
func download(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if s.dir == "" {
		return nil, noFiles("download")
	}
	var p DownloadParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if p.Attachment == "" {
		return nil, invalidParams("attachment: want an attachment id")
	}
	if !filepath.IsAbs(p.Dst) {
		return nil, invalidParams("dst %q: want an absolute path (the daemon does not share the caller's working directory)", p.Dst)
	}
	path, err := s.c.DownloadWith(ctx, p.Attachment, p.Dst, client.DownloadOptions{Force: p.Force})
	if err != nil {
		return nil, err
	}
	return DownloadResult{Path: path}, nil
}

// maxTTLSeconds is the longest lifetime of an invite that a
// time.Duration holds.
const maxTTLSeconds = math.MaxInt64 / int64(time.Second)

// createInvite asks the server for an invite (administrators only).
func createInvite(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p CreateInviteParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if p.Uses < 1 || p.TTLSeconds < 1 || p.TTLSeconds > maxTTLSeconds {
		return nil, invalidParams("create_invite: want uses of at least 1 and ttl_seconds from 1 to %d", maxTTLSeconds)
	}
	return s.c.CreateInvite(ctx, p.Uses, time.Duration(p.TTLSeconds)*time.Second)
}
