/**
 * The records kept in the metadata store. Plain JSON-serialisable data, no behaviour.
 */
import type { ImageId } from './names.js';

export type ImageStatus = 'pending' | 'complete';

/** What the layer upload produced: bytes are content-addressed by `digest`. */
export interface LayerRecord {
  /** `sha256:<hex>` of the layer bytes; the blob's address. */
  digest: string;
  size: number;
  /** `sha256:<hex>` of json bytes + "\n" + layer bytes (X-Docker-Checksum-Payload). */
  payloadChecksum: string;
  /** Tarsum computed while the layer streamed, when the client announced one. */
  tarsum: string | null;
}

export interface ImageRecord {
  id: ImageId;
  parent: ImageId | null;
  /** `pending` until PUT checksum verified the layer; only `complete` images are served. */
  status: ImageStatus;
  /** Byte length of the image JSON as uploaded (kept byte-exact under its own key). */
  jsonSize: number;
  /** X-Docker-Checksum the client announced (tarsum or sha256), verified against the layer. */
  claimedChecksum: string | null;
  layer: LayerRecord | null;
  createdAt: string;
  completedAt: string | null;
}

/** Client facts recorded on every tag PUT (the `…/json` routes serve them). */
export interface ClientInfo {
  last_update: number | null;
  docker_version: string | null;
  docker_go_version: string | null;
  arch: string;
  os: string;
  kernel: string | null;
}

export interface TagRecord {
  imageId: ImageId;
  info: ClientInfo;
}

export type RepoAccess = 'public' | 'private';

/** What a collaborator may do on a repository (owners and admins may do everything). */
export type Permission = 'read' | 'write' | 'admin';

export interface RepoRecord {
  namespace: string;
  repository: string;
  access: RepoAccess;
  description: string;
  createdAt: string;
  /** Client facts of the most recent tag PUT in this repository. */
  lastTagInfo: ClientInfo | null;
  /** Users given access besides the namespace owner and the admins. */
  collaborators?: Record<string, Permission>;
  /** The long (Markdown) description; Docker Hub API double's `full_description`. */
  fullDescription?: string;
}

export interface UserRecord {
  name: string;
  email: string;
  /** bcrypt hash of the password. */
  passwordHash: string;
  active: boolean;
  admin: boolean;
  createdAt: string;
}

/** One entry of a repository's image list (Index API). */
export interface RepoImageEntry {
  id: ImageId;
  checksum?: string;
}

/** One webhook notification on its way to one endpoint (kept in the metadata store). */
export interface WebhookDelivery {
  id: string;
  url: string;
  /** The JSON body, as it will be POSTed. */
  payload: unknown;
  attempts: number;
  /** When the next attempt is due (ms since the epoch). */
  dueAt: number;
  createdAt: string;
  lastError: string | null;
}
