/** The administrators' pages: accounts, garbage collection, fsck, storage per repository. */
import { humanBytes } from '../../../domain/units.js';
import type { StorageView } from '../../../services/catalog.js';
import type { AccountView } from '../../../services/console.js';
import type { FsckReport } from '../../../services/fsck.js';
import type { GcReport } from '../../../services/gc.js';
import { barChart } from '../charts.js';
import { each, html, type Html } from '../html.js';
import { bytes, plural, postForm, repoPath, shortId, time, type PageOptions, type View } from '../layout.js';

const CRUMBS = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/-/admin">Admin</a></nav>`;
/** Repositories drawn in the storage chart (the table lists STORAGE_ROWS). */
const STORAGE_BARS = 25;
const STORAGE_ROWS = 500;

export function adminHome(): PageOptions {
  const body = html`<h1>Admin</h1>
<ul class="links">
<li><a href="/-/admin/users">Users</a>: create accounts, deactivate them, make administrators</li>
<li><a href="/-/admin/gc">Garbage collection</a>: free the layers nothing uses any more</li>
<li><a href="/-/admin/fsck">Consistency check</a>: re-hash every layer and check every record</li>
<li><a href="/-/admin/storage">Storage</a>: bytes per repository</li>
</ul>`;
  return { title: 'Admin', body };
}

export interface NewUserForm {
  username: string;
  email: string;
  admin: boolean;
  error: string | null;
}

export const EMPTY_USER_FORM: NewUserForm = { username: '', email: '', admin: false, error: null };

export function usersPage(view: View, accounts: AccountView[], form: NewUserForm, notice: string | null): PageOptions {
  const self = view.user?.name;
  const rows = accounts.map((a) => {
    const actions: Html[] = [];
    if (a.name !== self) {
      actions.push(
        postForm(
          view,
          `/-/admin/users/${a.name}/active`,
          html`<input type="hidden" name="active" value="${a.active ? 'false' : 'true'}"><button type="submit"${a.active ? html` class="danger"` : ''} aria-label="${a.active ? 'Deactivate' : 'Activate'} ${a.name}">${a.active ? 'Deactivate' : 'Activate'}</button>`,
          'inline',
        ),
        postForm(
          view,
          `/-/admin/users/${a.name}/admin`,
          html`<input type="hidden" name="admin" value="${a.admin ? 'false' : 'true'}"><button type="submit" aria-label="${a.admin ? `Revoke admin from ${a.name}` : `Make ${a.name} admin`}">${a.admin ? 'Revoke admin' : 'Make admin'}</button>`,
          'inline',
        ),
      );
    }
    return html`<tr>
<th scope="row">${a.name}</th>
<td>${a.email}</td>
<td>${a.admin ? 'yes' : 'no'}</td>
<td>${a.active ? html`<span class="ok">active</span>` : html`<span class="bad">inactive</span>`}</td>
<td>${time(a.createdAt)}</td>
<td><div class="actions">${actions.length ? actions : html`<span class="muted">you</span>`}</div></td>
</tr>`;
  });
  const body = html`${CRUMBS}
<h1>Users</h1>
<table>
<caption class="sr-only">Accounts</caption>
<thead><tr><th scope="col">Name</th><th scope="col">E-mail</th><th scope="col">Admin</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<section class="panel" aria-labelledby="new-user-heading">
<h2 id="new-user-heading">Create a user</h2>
${form.error && html`<p class="error" role="alert">${form.error}</p>`}
${postForm(
  view,
  '/-/admin/users',
  html`<label for="new-username">Username <span class="hint">(4 to 30 of a-z, 0-9, _)</span></label>
<input type="text" id="new-username" name="username" value="${form.username}" required autocomplete="off" maxlength="30">
<label for="new-email">E-mail</label>
<input type="email" id="new-email" name="email" value="${form.email}" required autocomplete="off" maxlength="254">
<label for="new-password">Password <span class="hint">(5 to 72 bytes)</span></label>
<input type="password" id="new-password" name="password" required autocomplete="new-password" maxlength="72">
<label class="check"><input type="checkbox" name="admin" value="true"${form.admin ? html` checked` : ''}> Administrator</label>
<div class="actions"><button type="submit" class="primary">Create user</button></div>`,
)}
</section>`;
  return { title: 'Users', body, notice };
}

export function gcPage(view: View, graceSeconds: number, report: GcReport | null): PageOptions {
  const body = html`${CRUMBS}
<h1>Garbage collection</h1>
<p>Deletes the images no tag and no repository's image list reaches (images younger than ${plural(graceSeconds, 'second', 'seconds')} are kept: a push may not have tagged them yet), then every layer no remaining image uses. Tag and image-list writes wait while it runs.</p>
${report && gcReport(report)}
${postForm(
  view,
  '/-/admin/gc',
  html`<div class="actions"><button type="submit" name="mode" value="dry-run">Dry run</button>
<button type="submit" name="mode" value="run" class="danger primary">Run garbage collection</button></div>`,
)}`;
  return { title: 'Garbage collection', body };
}

function gcReport(report: GcReport): Html {
  const label = (what: string, done: string) => (report.dryRun ? `${what} that would be ${done}` : `${what} ${done}`);
  return html`<section class="panel" aria-labelledby="gc-result" role="status">
<h2 id="gc-result">${report.dryRun ? 'Dry run: nothing was deleted' : 'Garbage collection done'}</h2>
<dl class="facts">
<div><dt>${label('Images', 'deleted')}</dt><dd>${report.images.deleted} of ${report.images.scanned}</dd></div>
<div><dt>${label('Layers', 'deleted')}</dt><dd>${report.blobs.deleted} of ${report.blobs.scanned}</dd></div>
<div><dt>${label('Space', 'freed')}</dt><dd>${bytes(report.blobs.bytesFreed)}</dd></div>
<div><dt>${label('Unfinished uploads', 'reclaimed')}</dt><dd>${report.uploads.reclaimed} (${bytes(report.uploads.bytesFreed)})</dd></div>
<div><dt>Took</dt><dd>${report.durationMs} ms</dd></div>
</dl>
${
  report.images.deletedIds.length > 0 &&
  html`<details><summary>${report.dryRun ? 'The images that would be deleted' : 'The images deleted'}</summary>
<ul>${report.images.deletedIds.map((id) => html`<li><code>${id}</code></li>`)}</ul></details>`
}
</section>`;
}

export function fsckPage(view: View, report: FsckReport | null): PageOptions {
  const body = html`${CRUMBS}
<h1>Consistency check</h1>
<p>Re-hashes every layer and checks every image, tag and image list against what is stored. Nothing is repaired here (use <code>registry fsck --repair</code>). Pushes wait while it runs: on a large store, run it at a quiet time.</p>
${report && fsckReport(report)}
${postForm(view, '/-/admin/fsck', html`<div class="actions"><button type="submit" class="primary">Run check</button></div>`)}`;
  return { title: 'Consistency check', body };
}

function fsckReport(report: FsckReport): Html {
  return html`<section class="panel" aria-labelledby="fsck-result" role="status">
<h2 id="fsck-result">${report.ok ? html`<span class="ok">No problems found</span>` : html`<span class="bad">${plural(report.problems.length, 'problem', 'problems')} found</span>`}</h2>
<dl class="facts">
<div><dt>Layers checked</dt><dd>${report.blobs.checked} (${humanBytes(report.blobs.bytes)})</dd></div>
<div><dt>Images checked</dt><dd>${report.images.checked}</dd></div>
<div><dt>Complete</dt><dd>${report.images.complete}</dd></div>
<div><dt>Being uploaded</dt><dd>${report.images.pending}</dd></div>
<div><dt>Tags checked</dt><dd>${report.tags.checked}</dd></div>
<div><dt>Unreferenced images</dt><dd>${report.images.unreferenced.length}</dd></div>
<div><dt>Orphan layers</dt><dd>${report.blobs.orphans.length}</dd></div>
</dl>
${
  report.problems.length > 0 &&
  html`<table>
<caption>Problems</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Subject</th><th scope="col">Detail</th></tr></thead>
<tbody>${report.problems.map((p) => html`<tr><td>${p.kind}</td><td><code>${p.subject}</code></td><td>${p.detail}</td></tr>`)}</tbody>
</table>`
}
${
  report.images.unreferenced.length > 0 &&
  html`<details><summary>Unreferenced images (garbage collection frees them)</summary><ul>${report.images.unreferenced.map((id) => html`<li>${shortId(id)}</li>`)}</ul></details>`
}
</section>`;
}

export function storagePage(storage: StorageView): PageOptions {
  const top = storage.repositories.slice(0, STORAGE_BARS);
  const rows = storage.repositories.slice(0, STORAGE_ROWS);
  const chart = barChart({
    id: 'storage',
    title: 'Storage per repository',
    description: `The ${plural(top.length, 'largest repository', 'largest repositories')} by the bytes of the layers they hold.`,
    bars: top.map((r) => ({ label: r.name.full, value: r.size })),
    format: humanBytes,
  });
  const body = html`${CRUMBS}
<h1>Storage</h1>
<dl class="facts">
<div><dt>Repositories</dt><dd>${storage.repositories.length}</dd></div>
<div><dt>Layers in repositories</dt><dd>${bytes(storage.referencedBytes)}</dd></div>
<div><dt>Blob store</dt><dd>${bytes(storage.blobs.bytes)} in ${plural(storage.blobs.count, 'layer', 'layers')}</dd></div>
</dl>
<p class="hint">A repository's size counts each layer of its images once; a layer shared by several repositories counts in each of them, and once in “Layers in repositories”. The blob store also holds layers of untagged images until garbage collection frees them.</p>
${top.length > 0 ? html`<figure class="chart">${chart}<figcaption>The largest repositories.</figcaption></figure>` : html`<p>No repositories yet.</p>`}
${
  rows.length > 0 &&
  html`<table>
<caption>${rows.length < storage.repositories.length ? `The ${rows.length} largest repositories` : 'Every repository'}, largest first</caption>
<thead><tr><th scope="col">Repository</th><th scope="col" class="num">Tags</th><th scope="col" class="num">Size</th></tr></thead>
<tbody>${each(rows, (r) => html`<tr><th scope="row"><a href="${repoPath(r.name)}">${r.name.full}</a></th><td class="num">${r.tagCount}</td><td class="num">${bytes(r.size)}</td></tr>`)}</tbody>
</table>`
}`;
  return { title: 'Storage', body };
}
