package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

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
// within maxBytes and the caller user's quota (zero: none). length is the
// announced size (from Content-Length), or -1 when unknown. ttl is the
// attachment's lifetime (zero: none; else whole seconds up to the
// retention, or bad_request): Prune deletes it ttl after it was stored,
// and from then on it is neither served nor counted in the quota. An
// attachment with the same content that already exists is returned as it
// is, kept for the longer of the two lifetimes (none being the longest).
//
// The quota is reserved in the store before any byte is accepted and
// atomically turned into the blob record afterwards (store.Store's
// ReserveBlobQuota and CommitBlobReservation), so parallel uploads, on
// one node or many, never store more than the quota: checking the usage
// first and recording the blob afterwards let 16 parallel 1 MiB uploads
// through a 1 MiB quota. An upload of known length reserves exactly it;
// one of unknown length reserves what is left, up to maxBytes, and gives
// back what it did not use. A failed upload releases its reservation; one
// whose process dies leaves it to expire after BlobReservationTTL, which
// also bounds the upload.
func (s *Service) UploadAttachment(ctx context.Context, sess *Session, r io.Reader, length, maxBytes, quota int64, ttl time.Duration) (protocol.AttachmentInfo, error) {
	if err := s.checkAttachmentTTL(ttl); err != nil {
		return protocol.AttachmentInfo{}, err
	}
	if length > maxBytes {
		return protocol.AttachmentInfo{}, perr(protocol.CodeTooLarge, "attachment of %d bytes exceeds %d", length, maxBytes)
	}
	limit := maxBytes
	quotaBound := false
	var res store.BlobReservation
	if quota > 0 {
		want, min := maxBytes, int64(1)
		if length >= 0 {
			want, min = max(length, 1), max(length, 1)
		}
		now := s.now().UTC()
		var err error
		res, err = s.st.ReserveBlobQuota(ctx, store.BlobReservation{Owner: sess.User, Bytes: want, Created: now, Expires: now.Add(s.cfg.BlobReservationTTL)}, min, quota)
		if errors.Is(err, store.ErrQuotaExceeded) {
			if length >= 0 {
				return protocol.AttachmentInfo{}, perr(protocol.CodeQuotaExceeded, "attachment of %d bytes exceeds what is left of the attachment quota of %d bytes", length, quota)
			}
			return protocol.AttachmentInfo{}, perr(protocol.CodeQuotaExceeded, "attachment quota of %d bytes used up (or reserved by uploads in progress)", quota)
		} else if err != nil {
			return protocol.AttachmentInfo{}, internal("reserve attachment quota", err)
		}
		defer func() {
			if res.ID != 0 {
				if err := s.st.ReleaseBlobReservation(context.WithoutCancel(ctx), res.ID); err != nil {
					s.log.Warn("release attachment quota", "user", sess.UserName, "err", err)
				}
			}
		}()
		limit, quotaBound = res.Bytes, res.Bytes < maxBytes
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, res.Expires)
		defer cancel()
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
	if ttl > 0 {
		b.Expires = now.Add(ttl)
	}
	b.SHA256 = make([]byte, 32)
	fmt.Sscanf(id, "%x", &b.SHA256)
	if res.ID != 0 {
		err = s.st.CommitBlobReservation(ctx, res.ID, b)
		if err == nil {
			res.ID = 0 // it is the blob record now
		}
	} else {
		err = s.st.CreateBlob(ctx, b)
	}
	if errors.Is(err, store.ErrConflict) {
		// The same content is kept: for as long as its first upload
		// asked, and at least for as long as this one asks.
		old, gerr := s.st.ExtendBlob(ctx, id, b.Expires)
		if gerr == nil {
			return attachmentInfo(old), nil
		}
		return protocol.AttachmentInfo{}, internal("attachment "+id, gerr)
	} else if err != nil {
		// Keep content that another upload of the same bytes recorded
		// meanwhile.
		if _, gerr := s.st.Blob(context.WithoutCancel(ctx), id); errors.Is(gerr, store.ErrNotFound) {
			s.blobs.Delete(context.WithoutCancel(ctx), id)
		}
		if errors.Is(err, store.ErrNotFound) && res.ID != 0 {
			return protocol.AttachmentInfo{}, perr(protocol.CodeQuotaExceeded, "attachment upload took longer than %v; its quota reservation expired", s.cfg.BlobReservationTTL)
		}
		return protocol.AttachmentInfo{}, internal("record attachment "+id, err)
	}
	s.log.Debug("attachment stored", "attachment", id, "size", size, "user", sess.UserName, "ttl", ttl)
	return attachmentInfo(b), nil
}

// checkAttachmentTTL checks the lifetime asked for an upload: zero
// (none), or whole seconds from one up to the retention (when there is
// one).
func (s *Service) checkAttachmentTTL(ttl time.Duration) error {
	switch {
	case ttl < 0 || ttl%time.Second != 0:
		return perr(protocol.CodeBadRequest, "attachment lifetime %v is not a whole number of seconds", ttl)
	case s.cfg.Retention > 0 && ttl > s.cfg.Retention:
		return perr(protocol.CodeBadRequest, "attachment lifetime of %d seconds exceeds the retention of %d seconds", ttl/time.Second, s.cfg.Retention/time.Second)
	}
	return nil
}

// attachmentInfo describes the blob b to its clients.
func attachmentInfo(b store.Blob) protocol.AttachmentInfo {
	return protocol.AttachmentInfo{ID: b.ID, Size: b.Size, Created: b.Created.UTC(), Expires: b.Expires}
}

// Attachment opens an attachment for any authenticated device; the id (a
// hash of the encrypted content) is the capability. An expired attachment
// is not_found, as one that Prune deleted.
func (s *Service) Attachment(ctx context.Context, sess *Session, id string) (BlobReader, protocol.AttachmentInfo, error) {
	if !ValidBlobID(id) {
		return nil, protocol.AttachmentInfo{}, perr(protocol.CodeBadRequest, "attachment id must be 64 lowercase hex digits")
	}
	b, err := s.st.Blob(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && b.ExpiredAt(s.now())) {
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
	return r, attachmentInfo(b), nil
}
