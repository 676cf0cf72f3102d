// Package wire holds the RFC 9420 data structures and their exact
// encodings: every struct of the MLS protocol that crosses the wire, with
// EncodeMLS and DecodeMLS methods such that decoding and re-encoding any
// accepted input reproduces it byte for byte.
//
// Map of files to RFC 9420 sections:
//
//	extension.go          §13 Extension, ExtensionType, §13.5 GREASE
//	extension_payloads.go extension contents: §5.3.3 application_id, §11.1
//	                      required_capabilities, §12.4.3.2 external_pub,
//	                      §12.1.8.1 external_senders (ratchet_tree: tree.go)
//	credential.go         §5.3 Credential, CredentialType
//	leafnode.go           §7.2 LeafNode, LeafNodeTBS, Capabilities, Lifetime
//	tree.go               §7.1 ParentNode, §7.8 NodeType, §12.4.3.3 ratchet_tree
//	updatepath.go         §7.6 HPKECiphertext, UpdatePathNode, UpdatePath
//	keypackage.go         §10 KeyPackage, KeyPackageTBS, §5.2 KeyPackageRef
//	psk.go                §8.4 PreSharedKeyID, PSKType, ResumptionPSKUsage
//	proposal.go           §12.1 Proposal and its bodies, §5.2 ProposalRef
//	commit.go             §12.4 ProposalOrRef, Commit
//	framing.go            §6 ProtocolVersion, WireFormat, ContentType, Sender,
//	                      FramedContent, §6.1 FramedContentTBS,
//	                      FramedContentAuthData, AuthenticatedContent
//	publicmessage.go      §6.2 PublicMessage, AuthenticatedContentTBM
//	privatemessage.go     §6.3 PrivateMessage, PrivateMessageContent,
//	                      PrivateContentAAD, §6.3.2 SenderData, SenderDataAAD
//	transcript.go         §8.2 ConfirmedTranscriptHashInput,
//	                      InterimTranscriptHashInput
//	groupcontext.go       §8.1 GroupContext
//	groupinfo.go          §12.4.3 GroupInfo, GroupInfoTBS
//	welcome.go            §12.4.3.1 GroupSecrets, EncryptedGroupSecrets, Welcome
//	message.go            §6 MLSMessage
//
// Decoding is syntax only: a select on an enum value that carries no length
// (wire_format, content_type, sender_type, leaf_node_source, node_type,
// psktype, ProposalOrRef type) is an error naming the value, while types
// that can be skipped by length are preserved: unknown extensions, unknown
// credential types (carried as opaque<V>), unknown proposal types (carried
// as opaque<V>, the convention of OpenMLS and mls-rs for custom proposals)
// and GREASE values in capabilities. Versions, cipher suites, signatures
// and every other semantic rule are the caller's to check.
//
// Encoders record an error in the codec.Builder when a value is
// inconsistent (a select arm that does not match its type, an unknown
// select value, an over-long field); they never panic. Functions that
// return a bare []byte (TBS encoders, AADs, transcript inputs) return nil
// when the value cannot be encoded; no valid encoding of theirs is empty.
package wire
