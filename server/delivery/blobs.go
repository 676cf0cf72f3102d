package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// BlobStore keeps attachment content, addressed by the lowercase hex
// SHA-256 of the content. It is implemented by server/blob.
type BlobStore interface {
	// Put streams r to durable storage until EOF or until more than max
	// bytes were read (then it fails with ErrBlobTooLarge and keeps
	// nothing). It returns the content's id and size.
	Put(ctx context.Context, r io.Reader, max int64) (id string, size int64, err error)
	// Open returns the content of a blob (ErrBlobNotFound if absent).
	Open(ctx context.Context, id string) (BlobReader, error)
	// Delete removes a blob; deleting a missing blob is not an error.
	Delete(ctx context.Context, id string) error
}

// BlobReader is an open blob: seekable for range requests.
type BlobReader interface {
	io.ReadSeekCloser
	// Size is the content's size.
	Size() int64
}

// Sentinel errors of BlobStore.
var (
	ErrBlobTooLarge = errors.New("blob too large")
	ErrBlobNotFound = errors.New("blob not found")
)

var blobIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidBlobID reports whether id is a lowercase hex SHA-256.
func ValidBlobID(id string) bool { return blobIDPattern.MatchString(id) }

// UploadAttachment streams an encrypted attachment to the blob store,
// within maxBytes and the caller user's quota (zero: none). An attachment
// with the same content that already exists is returned as it is.
func (s *Service) UploadAttachment(ctx context.Context, sess *Session, r io.Reader, maxBytes, quota int64) (protocol.AttachmentInfo, error) {
	limit := maxBytes
	quotaBound := false
	if quota > 0 {
		_, used, err := s.st.BlobUsage(ctx, sess.User)
		if err != nil {
			return protocol.AttachmentInfo{}, internal("attachment quota", err)
		}
		left := quota - used
		if left <= 0 {
			return protocol.AttachmentInfo{}, perr(protocol.CodeQuotaExceeded, "attachment quota of %d bytes used up", quota)
		}
		if left < limit {
			limit, quotaBound = left, true
		}
	}
	id, size, err := s.blobs.Put(ctx, r, limit)
	if errors.Is(err, ErrBlobTooLarge) {
		if quotaBound {
			return protocol.AttachmentInfo{}, perr(protocol.CodeQuotaExceeded, "attachment exceeds the %d bytes left of the quota", limit)
		}
		return protocol.AttachmentInfo{}, perr(protocol.CodeTooLarge, "attachment exceeds %d bytes", limit)
	} else if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			return protocol.AttachmentInfo{}, pe
		}
		return protocol.AttachmentInfo{}, internal("store attachment", err)
	}
	now := s.now().UTC()
	b := store.Blob{ID: id, Owner: sess.User, Size: size, Created: now}
	b.SHA256 = make([]byte, 32)
	fmt.Sscanf(id, "%x", &b.SHA256)
	err = s.st.CreateBlob(ctx, b)
	if errors.Is(err, store.ErrConflict) {
		old, gerr := s.st.Blob(ctx, id)
		if gerr == nil {
			return protocol.AttachmentInfo{ID: id, Size: old.Size, Created: old.Created.UTC()}, nil
		}
		return protocol.AttachmentInfo{}, internal("attachment "+id, gerr)
	} else if err != nil {
		s.blobs.Delete(context.WithoutCancel(ctx), id)
		return protocol.AttachmentInfo{}, internal("record attachment "+id, err)
	}
	s.log.Debug("attachment stored", "attachment", id, "size", size, "user", sess.UserName)
	return protocol.AttachmentInfo{ID: id, Size: size, Created: now}, nil
}

// Attachment opens an attachment for any authenticated device; the id (a
// hash of the encrypted content) is the capability.
func (s *Service) Attachment(ctx context.Context, sess *Session, id string) (BlobReader, protocol.AttachmentInfo, error) {
	if !ValidBlobID(id) {
		return nil, protocol.AttachmentInfo{}, perr(protocol.CodeBadRequest, "attachment id must be 64 lowercase hex digits")
	}
	b, err := s.st.Blob(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, protocol.AttachmentInfo{}, perr(protocol.CodeNotFound, "no attachment %s", id)
	} else if err != nil {
		return nil, protocol.AttachmentInfo{}, internal("attachment "+id, err)
	}
	r, err := s.blobs.Open(ctx, id)
	if errors.Is(err, ErrBlobNotFound) {
		return nil, protocol.AttachmentInfo{}, perr(protocol.CodeNotFound, "attachment %s content is gone", id)
	} else if err != nil {
		return nil, protocol.AttachmentInfo{}, internal("open attachment "+id, err)
	}
	return r, protocol.AttachmentInfo{ID: id, Size: b.Size, Created: b.Created.UTC()}, nil
}
