/**
 * The one file that owns the LevelDB key schema. Every key is built here from validated
 * names (see domain/names.ts); none of the name alphabets contains `!` or `/` beyond the
 * one separating namespace and repository, so keys cannot collide or escape a prefix.
 *
 *   key                                   value (JSON unless noted)
 *   ─────────────────────────────────────  ──────────────────────────────────────────────
 *   image!<id>                            ImageRecord: parent, status, layer digest/size…
 *   imagejson!<id>                        raw bytes of the image JSON, exactly as uploaded
 *   ancestry!<id>                         ImageId[]: [id, parent, grandparent, …]
 *   repo!<ns>/<repo>                      RepoRecord: access, description, last tag info
 *   tag!<ns>/<repo>!<tag>                 TagRecord: image id + client info of the PUT
 *   repoimg!<ns>/<repo>!<id>              RepoImageEntry: the repository's image list (what
 *                                         the Index lists, plus the ancestry of every tag
 *                                         set), one key per image so merges never lose one
 *   imgrepo!<id>!<ns>/<repo>              true: reverse of repoimg (which repositories hold
 *                                         an image), written in the same batches
 *   user!<name>                           UserRecord (bcrypt hash, e-mail, active, admin)
 *   email!<email>                         string: the user name owning that e-mail
 *   hook!<due ms, 15 digits>!<id>         WebhookDelivery waiting to be sent, ordered by
 *                                         when it is due (the persistent webhook queue)
 *   meta!schema                           number: schema version of this database
 *   pulls!<ns>/<repo>                     RepoPullStats {count, lastPulledAt}: v1 pulls of the
 *                                         repository (the Docker Hub API double's pull_count)
 *   tagpull!<ns>/<repo>!<tag>             string: ISO time the tag was last pulled (Hub double)
 *   tagpush!<ns>/<repo>!<tag>             string: the user who last pushed the tag (Hub double)
 *   oauthclient!<client id>               OAuthClientRecord: name, hashed secret, redirect URIs
 *   oauthcode!<sha256 of code>            OAuthCodeRecord: an authorization code (kept after use,
 *                                         marked used, so that a reuse is recognised)
 *   oauthgrant!<user>!<grant id>          OAuthGrantRecord: one authorization of a client by a user
 *   oauthtoken!<sha256 of token>          OAuthTokenRecord: an access or refresh token
 *   oauthgt!<grant id>!<sha256 of token>  true: the tokens of a grant (revoking it deletes them)
 *
 * OAuth ids and hashes are lowercase hex; user names are [a-z0-9_].
 *
 *   Registry API v2 (<name> is the full name: `ns/repo`, or deeper `a/b/c`; digests are
 *   `sha256:<hex>`, validated before they get here):
 *   manifest!<digest>                     raw bytes of a manifest, exactly as pushed (stored
 *                                         once, whichever repositories hold it)
 *   repoman!<name>!<digest>               ManifestLink: the repository holds this manifest
 *   referrer!<name>!<subject>!<digest>    true: the manifest <digest> of <name> has `subject`
 *                                         <subject> (the referrers API), written with its link
 *   repoblob!<name>!<digest>              BlobLink: the repository holds this blob
 *   upload!<uuid>                         UploadRecord: a v2 upload session (bytes in uploads/)
 *   layer!<digest>                        LayerFacts {compression, diffId} of a layer blob
 *   v1man!<image id>!<docker|oci>         string: the manifest digest that shows this v1 image
 *                                         over v2 (synthesized once, or the one pushed over v2)
 *
 * Writes that belong together go in one batch: an image's record + json + ancestry; a tag
 * + its repository record + its image-list links; a repository delete with all its tags,
 * image-list entries and reverse links (and its manifest links, referrer entries and blob
 * links); a user with its e-mail index; a manifest's bytes, link and referrer entry.
 * A tag record names an image (v1), a manifest (v2), or both.
 */
import type { ImageId, RepoName, Tag } from '../../domain/names.js';

export const SCHEMA_VERSION = 1;
/** Upper bound for prefix scans: sorts after every character our names can contain. */
const END = '\xff';

export const keys = {
  schema: () => 'meta!schema',
  image: (id: ImageId) => `image!${id}`,
  imageJson: (id: ImageId) => `imagejson!${id}`,
  ancestry: (id: ImageId) => `ancestry!${id}`,
  repo: (name: RepoName) => `repo!${name.full}`,
  tag: (name: RepoName, tag: Tag) => `tag!${name.full}!${tag}`,
  repoImage: (name: RepoName, id: ImageId) => `repoimg!${name.full}!${id}`,
  imageRepo: (id: ImageId, name: RepoName) => `imgrepo!${id}!${name.full}`,
  user: (name: string) => `user!${name}`,
  email: (email: string) => `email!${email}`,
  webhook: (dueAt: number, id: string) => `hook!${String(Math.max(0, Math.floor(dueAt))).padStart(15, '0')}!${id}`,
  repoPulls: (name: RepoName) => `pulls!${name.full}`,
  tagPull: (name: RepoName, tag: Tag) => `tagpull!${name.full}!${tag}`,
  tagPusher: (name: RepoName, tag: Tag) => `tagpush!${name.full}!${tag}`,
  manifest: (digest: string) => `manifest!${digest}`,
  manifestLink: (name: RepoName, digest: string) => `repoman!${name.full}!${digest}`,
  referrer: (name: RepoName, subject: string, digest: string) => `referrer!${name.full}!${subject}!${digest}`,
  blobLink: (name: RepoName, digest: string) => `repoblob!${name.full}!${digest}`,
  upload: (id: string) => `upload!${id}`,
  layerFacts: (digest: string) => `layer!${digest}`,
  imageManifest: (id: ImageId, flavor: string) => `v1man!${id}!${flavor}`,
  oauthClient: (id: string) => `oauthclient!${id}`,
  oauthCode: (hash: string) => `oauthcode!${hash}`,
  oauthGrant: (user: string, id: string) => `oauthgrant!${user}!${id}`,
  oauthToken: (hash: string) => `oauthtoken!${hash}`,
  oauthGrantToken: (grantId: string, hash: string) => `oauthgt!${grantId}!${hash}`,
};

export interface KeyRange {
  gt: string;
  lt: string;
}

function prefixRange(prefix: string): KeyRange {
  return { gt: prefix, lt: prefix + END };
}

export const ranges = {
  images: () => prefixRange('image!'),
  repos: () => prefixRange('repo!'),
  tags: (name: RepoName) => prefixRange(`tag!${name.full}!`),
  repoImages: (name: RepoName) => prefixRange(`repoimg!${name.full}!`),
  imageRepos: (id: ImageId) => prefixRange(`imgrepo!${id}!`),
  users: () => prefixRange('user!'),
  webhooks: () => prefixRange('hook!'),
  /** Deliveries due at or before `now`. */
  webhooksDue: (now: number) => ({ gt: 'hook!', lt: `hook!${String(Math.floor(now) + 1).padStart(15, '0')}` }),
  /** The repositories of one namespace (`/` ends the namespace: `ab/` never matches `ab-c/`). */
  tagPulls: (name: RepoName) => prefixRange(`tagpull!${name.full}!`),
  tagPushers: (name: RepoName) => prefixRange(`tagpush!${name.full}!`),
  manifests: () => prefixRange('manifest!'),
  manifestLinks: (name: RepoName) => prefixRange(`repoman!${name.full}!`),
  referrers: (name: RepoName, subject: string) => prefixRange(`referrer!${name.full}!${subject}!`),
  allReferrers: (name: RepoName) => prefixRange(`referrer!${name.full}!`),
  blobLinks: (name: RepoName) => prefixRange(`repoblob!${name.full}!`),
  uploads: () => prefixRange('upload!'),
  imageManifests: () => prefixRange('v1man!'),
  oauthClients: () => prefixRange('oauthclient!'),
  oauthGrants: (user: string) => prefixRange(`oauthgrant!${user}!`),
  oauthGrantTokens: (grantId: string) => prefixRange(`oauthgt!${grantId}!`),
  oauthCodes: () => prefixRange('oauthcode!'),
  oauthTokens: () => prefixRange('oauthtoken!'),
};

/** The last `!`-separated part of a key (a tag or an image id in the ranges above). */
export function lastPart(key: string): string {
  return key.slice(key.lastIndexOf('!') + 1);
}
