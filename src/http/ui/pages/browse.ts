/**
 * Browsing pages: the repository list (and search results), a repository with its tags and
 * its owners' controls, a tag's image history, and the confirmations before a delete.
 */
import type { RepoName } from '../../../domain/names.js';
import { humanBytes } from '../../../domain/units.js';
import type { ImageHistoryView, RepoListing, RepoSummary, RepoView, TagRow } from '../../../services/catalog.js';
import { MAX_DESCRIPTION } from '../../../services/catalog.js';
import { barChart } from '../charts.js';
import { each, html, type Html } from '../html.js';
import { bytes, plural, postForm, repoPath, shortId, tagPath, time, type PageOptions, type View } from '../layout.js';

export function repositoryList(listing: RepoListing, notice: string | null): PageOptions {
  const searching = listing.query.trim() !== '';
  const title = searching ? `Search results for “${listing.query}”` : 'Repositories';
  const rows = each(
    listing.items,
    (repo) => html`<tr>
<th scope="row"><a href="${repoPath(repo.name)}">${repo.name.full}</a>${privateBadge(repo)}</th>
<td>${repo.description || html`<span class="muted">No description</span>`}</td>
<td class="num">${repo.tagCount}</td>
<td class="num">${bytes(repo.size)}</td>
<td class="num">${repo.pulls}</td>
<td>${time(repo.updatedAt)}</td>
</tr>`,
  );
  const pageLink = (page: number) => `/?${new URLSearchParams({ ...(searching ? { q: listing.query } : {}), page: String(page) })}`;
  const body = html`<h1>${title}</h1>
<p class="muted">${plural(listing.total, 'repository', 'repositories')}${searching ? ' found' : ' you can see'}, most recently pushed first.</p>
${
  listing.items.length === 0
    ? html`<p>${searching ? 'No repository matches your search.' : html`No repositories yet. Push one with <code>registry push</code>.`}</p>`
    : html`<table>
<caption class="sr-only">Repositories, most recently pushed first</caption>
<thead><tr><th scope="col">Repository</th><th scope="col">Description</th><th scope="col" class="num">Tags</th><th scope="col" class="num">Size</th><th scope="col" class="num">Pulls</th><th scope="col">Last pushed</th></tr></thead>
<tbody>${rows}</tbody>
</table>`
}
${
  listing.pages > 1 &&
  html`<nav class="pages" aria-label="Pages">
${listing.page > 1 && html`<a href="${pageLink(listing.page - 1)}" rel="prev">Previous page</a>`}
<span>Page ${listing.page} of ${listing.pages}</span>
${listing.page < listing.pages && html`<a href="${pageLink(listing.page + 1)}" rel="next">Next page</a>`}
</nav>`
}`;
  return { title, body, notice };
}

export function repositoryPage(view: View, repo: RepoView, host: string, notice: string | null): PageOptions {
  const { summary, can } = repo;
  const name = summary.name;
  const path = repoPath(name);
  // Rendered row by row as the page is written (see html.ts).
  const rows = each(repo.tags, (row, i) => tagRow(name, row, i, host, can.untag));
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Repositories</a> / ${name.namespace}</nav>
<h1>${name.full}${privateBadge(summary)}</h1>
<p class="description">${summary.description || html`<span class="muted">No description</span>`}</p>
<dl class="facts">
<div><dt>Tags</dt><dd>${summary.tagCount}</dd></div>
<div><dt>Size</dt><dd>${bytes(summary.size)}</dd></div>
<div><dt>Pulls</dt><dd>${summary.pulls}</dd></div>
<div><dt>Last pushed</dt><dd>${time(summary.updatedAt)}</dd></div>
</dl>
<section aria-labelledby="tags-heading">
<h2 id="tags-heading">Tags</h2>
${
  repo.tags.length === 0
    ? html`<p>No tags yet.</p>`
    : html`<div class="scroll"><table class="tags">
<caption class="sr-only">Tags of ${name.full}, most recently pushed first</caption>
<thead><tr><th scope="col">Tag</th><th scope="col">Image</th><th scope="col" class="num">Size</th><th scope="col">Pushed</th><th scope="col">Pushed by</th><th scope="col">Pull command</th>${can.untag && html`<th scope="col"><span class="sr-only">Actions</span></th>`}</tr></thead>
<tbody>${rows}</tbody>
</table></div>`
}
</section>
${can.admin && manageSection(view, repo, path)}
${
  can.delete &&
  html`<section class="panel danger-zone" aria-labelledby="danger-heading">
<h2 id="danger-heading">Delete</h2>
<p>Deleting the repository removes its tags and its settings; its images are freed by the next garbage collection.</p>
<p><a class="button danger" href="${path}/delete">Delete repository…</a></p>
</section>`
}`;
  return { title: name.full, body, notice };
}

function tagRow(name: RepoName, row: TagRow, i: number, host: string, untag: boolean): Html {
  const ref = `${host}/${name.full}:${row.tag}`;
  const field = `pull-${i}`;
  return html`<tr>
<th scope="row"><a href="${tagPath(name, row.tag)}">${row.tag}</a></th>
<td>${shortId(row.imageId ?? row.manifest ?? '')}</td>
<td class="num">${bytes(row.size)}</td>
<td>${time(row.pushedAt)}</td>
<td>${row.pushedBy ?? html`<span class="muted">unknown</span>`}</td>
<td><div class="pull"><input class="pull" id="${field}" readonly value="docker pull ${ref}" size="${ref.length + 12}" aria-label="Pull command for ${row.tag}"><button type="button" class="copy" data-copy="${field}" aria-label="Copy pull command for ${row.tag}">Copy</button></div></td>
${untag && html`<td><a href="${tagPath(name, row.tag)}/delete" aria-label="Delete tag ${row.tag}">Delete</a></td>`}
</tr>`;
}

function manageSection(view: View, repo: RepoView, path: string): Html {
  const { summary } = repo;
  const collaborators = repo.collaborators ?? [];
  return html`<section class="panel" aria-labelledby="manage-heading">
<h2 id="manage-heading">Manage</h2>
${postForm(
  view,
  `${path}/description`,
  html`<label for="description">Description</label>
<textarea id="description" name="description" maxlength="${MAX_DESCRIPTION}">${summary.description}</textarea>
<div class="actions"><button type="submit" class="primary">Save description</button></div>`,
)}
<h3>Visibility</h3>
${postForm(
  view,
  `${path}/visibility`,
  html`<input type="hidden" name="private" value="${summary.isPrivate ? 'false' : 'true'}">
<div class="actions"><button type="submit" role="switch" aria-checked="${summary.isPrivate ? 'true' : 'false'}" aria-describedby="private-hint">Private</button>
<span id="private-hint" class="hint">${summary.isPrivate ? 'Only you, its collaborators and the administrators can see it.' : 'Anyone can see and pull it.'}</span></div>`,
  'row',
)}
<h3>Collaborators</h3>
${
  collaborators.length === 0
    ? html`<p class="muted">No collaborators.</p>`
    : html`<table>
<caption class="sr-only">Collaborators of ${summary.name.full}</caption>
<thead><tr><th scope="col">User</th><th scope="col">Permission</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>${collaborators.map(
        (c) => html`<tr><th scope="row">${c.user}</th><td>${c.permission}</td><td>${postForm(
          view,
          `${path}/collaborators/remove`,
          html`<input type="hidden" name="user" value="${c.user}"><button type="submit" class="danger" aria-label="Remove collaborator ${c.user}">Remove</button>`,
          'inline',
        )}</td></tr>`,
      )}</tbody>
</table>`
}
${postForm(
  view,
  `${path}/collaborators`,
  html`<label>User <input type="text" name="user" required autocomplete="off" maxlength="30"></label>
<label>Permission <select name="permission"><option value="read">read</option><option value="write">write</option><option value="admin">admin</option></select></label>
<button type="submit">Add collaborator</button>`,
  'row',
  'Add a collaborator',
)}
</section>`;
}

export function historyPage(history: ImageHistoryView, host: string): PageOptions {
  const { name, tag } = history;
  const ref = `${host}/${name.full}:${tag}`;
  const layers = history.layers;
  const chart = barChart({
    id: 'layer-sizes',
    title: `Layer sizes of ${name.full}:${tag}`,
    description: `${plural(layers.length, 'layer', 'layers')}, ${humanBytes(history.size)} in all; the base layer is at the bottom.`,
    bars: layers.map((layer, i) => ({ label: `${layers.length - i}. ${layer.id.slice(0, 12)}`, value: layer.size ?? 0 })),
    format: humanBytes,
  });
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Repositories</a> / <a href="${repoPath(name)}">${name.full}</a></nav>
<h1>${name.full}:${tag}</h1>
<dl class="facts">
<div><dt>Image</dt><dd>${shortId(history.imageId)}</dd></div>
<div><dt>Size</dt><dd>${bytes(history.size)}</dd></div>
<div><dt>Layers</dt><dd>${layers.length}</dd></div>
</dl>
<div class="pull"><input class="pull" id="pull-cmd" readonly value="docker pull ${ref}" aria-label="Pull command for ${tag}"><button type="button" class="copy" data-copy="pull-cmd" aria-label="Copy pull command for ${tag}">Copy</button></div>
<section aria-labelledby="history-heading">
<h2 id="history-heading">History</h2>
<figure class="chart">${chart}<figcaption>Size of each layer, newest at the top.</figcaption></figure>
<table>
<caption class="sr-only">Layers of ${name.full}:${tag}, newest first</caption>
<thead><tr><th scope="col" class="num">#</th><th scope="col">Layer</th><th scope="col">Created</th><th scope="col">Created by</th><th scope="col" class="num">Size</th></tr></thead>
<tbody>${layers.map(
    (layer, i) => html`<tr>
<td class="num">${layers.length - i}</td>
<th scope="row">${shortId(layer.id)}</th>
<td>${time(layer.created)}</td>
<td class="created-by">${layer.createdBy || html`<span class="muted">—</span>`}</td>
<td class="num">${bytes(layer.size)}</td>
</tr>`,
  )}</tbody>
</table>
</section>`;
  return { title: `${name.full}:${tag}`, body };
}

export function confirmTagDelete(view: View, name: RepoName, tag: string, imageId: string): PageOptions {
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Repositories</a> / <a href="${repoPath(name)}">${name.full}</a></nav>
<h1>Delete tag ${tag}?</h1>
<p>The tag <code>${name.full}:${tag}</code> points to image ${shortId(imageId)}. After the delete, pulls of this tag fail; layers no other tag uses are freed by the next garbage collection.</p>
${postForm(
  view,
  `${tagPath(name, tag)}/delete`,
  html`<div class="actions"><button type="submit" class="danger primary">Delete tag ${tag}</button> <a href="${repoPath(name)}">Cancel</a></div>`,
)}`;
  return { title: `Delete ${name.full}:${tag}`, body };
}

export function confirmRepoDelete(view: View, repo: RepoSummary, error: string | null): PageOptions {
  const name = repo.name;
  const body = html`<nav class="crumbs" aria-label="Breadcrumb"><a href="/">Repositories</a> / <a href="${repoPath(name)}">${name.full}</a></nav>
<h1>Delete repository ${name.full}?</h1>
<p>This deletes ${plural(repo.tagCount, 'tag', 'tags')} and the repository's settings and collaborators. It cannot be undone.</p>
${error && html`<p class="error" role="alert">${error}</p>`}
${postForm(
  view,
  `${repoPath(name)}/delete`,
  html`<label for="confirm-name">Type the repository name (${name.full}) to confirm</label>
<input type="text" id="confirm-name" name="confirm" required autocomplete="off" spellcheck="false">
<div class="actions"><button type="submit" class="danger primary">Delete repository</button> <a href="${repoPath(name)}">Cancel</a></div>`,
)}`;
  return { title: `Delete ${name.full}`, body };
}

function privateBadge(repo: RepoSummary): Html | false {
  return repo.isPrivate && html` <span class="badge private">Private</span>`;
}
