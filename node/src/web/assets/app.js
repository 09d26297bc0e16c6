// smpl's web app: results as you type, audition by click or keyboard, waveforms,
// buying, downloading and publishing, live changes by server-sent events.
// Plain JavaScript, served by the node; no build step.

const csrf = document.querySelector('meta[name="smpl-csrf"]')?.content ?? '';
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function say(text) {
  const live = $('#live');
  if (live) live.textContent = text;
}

async function post(url, body = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-smpl-csrf': csrf },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

// ---- waveforms ------------------------------------------------------------

function drawWave(row) {
  const canvas = $('canvas.wave', row);
  const hex = row.dataset.wave;
  if (!canvas || !hex) return;
  const ctx = canvas.getContext('2d');
  const n = hex.length / 2;
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.fillStyle = getComputedStyle(canvas).color || '#7aa';
  const step = width / n;
  for (let i = 0; i < n; i++) {
    const v = parseInt(hex.substr(i * 2, 2), 16) / 255;
    const h = Math.max(1, v * height);
    ctx.fillRect(i * step, (height - h) / 2, Math.max(1, step - 0.5), h);
  }
}

// ---- audition -------------------------------------------------------------

const probe = document.createElement('audio');
const oggOk = probe.canPlayType('audio/ogg; codecs="vorbis"') !== '';
const clips = new Map();
const player = { current: null, row: null, timings: [] };
window.smplPlayer = player;

function clipFor(row) {
  const src = row?.dataset.preview;
  if (!src) return null;
  const url = oggOk ? src : `${src}&format=wav`;
  let audio = clips.get(url);
  if (!audio) {
    audio = new Audio();
    audio.preload = 'auto';
    audio.src = url;
    clips.set(url, audio);
    if (clips.size > 64) {
      const [oldest] = clips.keys();
      if (clips.get(oldest) !== player.current) clips.delete(oldest);
    }
  }
  return audio;
}

function rows() {
  return $$('tr.hit');
}

function select(row) {
  for (const r of rows()) r.classList.toggle('selected', r === row);
  player.row = row;
  row.focus({ preventScroll: true });
  row.scrollIntoView({ block: 'nearest' });
}

function play(row) {
  const audio = clipFor(row);
  if (!audio) return;
  if (player.current && player.current !== audio) {
    player.current.pause();
  }
  select(row);
  const started = performance.now();
  audio.addEventListener('playing', () => player.timings.push(performance.now() - started), { once: true });
  audio.currentTime = 0;
  player.current = audio;
  audio.play().catch((e) => say(`cannot play: ${e.message}`));
  for (const r of rows()) r.classList.toggle('playing', r === row);
  // Fetch the next row's preview ahead, so arrow-key audition starts at once.
  const next = rows()[rows().indexOf(row) + 1];
  if (next) clipFor(next);
}

function toggle(row) {
  if (player.current && player.row === row && !player.current.paused) {
    player.current.pause();
  } else {
    play(row);
  }
}

function initRows(root = document) {
  for (const row of $$('tr.hit', root)) {
    row.tabIndex = -1;
    drawWave(row);
  }
  // The first row's preview is fetched ahead; on a fresh page only once it has
  // loaded (a loading audio element holds back the page's load event).
  const first = $('tr.hit', root);
  if (!first) return;
  if (document.readyState === 'complete') {
    clipFor(first);
  } else {
    window.addEventListener('load', () => clipFor(first), { once: true });
  }
}

document.addEventListener('click', (e) => {
  const button = e.target.closest('button.play');
  if (button) {
    toggle(button.closest('tr.hit'));
    return;
  }
  const cell = e.target.closest('tr.hit td.name');
  if (cell) play(cell.closest('tr.hit'));
});

function typing(el) {
  return el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT');
}

document.addEventListener('keydown', (e) => {
  const el = document.activeElement;
  if (e.key === '/' && !typing(el)) {
    const q = $('#q');
    if (q) {
      e.preventDefault();
      q.focus();
      q.select();
    }
    return;
  }
  const list = rows();
  if (!list.length) return;
  const inSearch = el && el.id === 'q';
  const onRow = el && el.matches && el.matches('tr.hit');
  if (!inSearch && !onRow && typing(el)) return;
  const at = onRow ? list.indexOf(el) : -1;
  if (e.key === 'ArrowDown' && (inSearch || onRow || !typing(el))) {
    e.preventDefault();
    play(list[Math.min(at + 1, list.length - 1)]);
  } else if (e.key === 'ArrowUp' && onRow) {
    e.preventDefault();
    if (at === 0 && $('#q')) {
      $('#q').focus();
    } else {
      play(list[Math.max(at - 1, 0)]);
    }
  } else if (e.key === ' ' && onRow) {
    e.preventDefault();
    toggle(el);
  } else if (e.key === 'Enter' && onRow) {
    e.preventDefault();
    const link = $('a[href^="/packs/"]', el);
    if (link) location.href = link.href;
  }
});

// ---- search as you type -----------------------------------------------------

const form = $('#search');
let searchTimer = 0;
let searchSeq = 0;

function queryString() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) {
    if (String(v).trim() !== '' && !(k === 'key_match' && v === 'exact')) params.set(k, v);
  }
  return params.toString();
}

async function refreshResults() {
  const qs = queryString();
  const seq = ++searchSeq;
  const res = await fetch(`/ui/results?${qs}`, { credentials: 'same-origin' });
  const html = await res.text();
  if (seq !== searchSeq) return;
  // The row in hand stays in hand when the new results hold it too.
  const had = player.row && { pack: player.row.dataset.pack, sample: player.row.dataset.sample };
  const focused = document.activeElement === player.row;
  const results = $('#results');
  results.innerHTML = html;
  history.replaceState(null, '', qs ? `/?${qs}` : '/');
  initRows(results);
  if (had) {
    const again = rows().find((r) => r.dataset.pack === had.pack && r.dataset.sample === had.sample);
    player.row = again || null;
    if (again) {
      again.classList.add('selected');
      if (focused) again.focus({ preventScroll: true });
    }
  }
}

if (form) {
  form.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(refreshResults, 120);
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    refreshResults();
  });
}

// ---- pack page: buy, download, licence ---------------------------------------

async function refreshLicence() {
  const panel = $('#licence');
  if (!panel) return;
  const res = await fetch(`/ui/packs/${panel.dataset.pack}/licence`, { credentials: 'same-origin' });
  if (!res.ok) return;
  // A download under way or done keeps its progress bar and outcome.
  const bar = $('progress', panel);
  const out = $('.fetched', panel);
  const button = $('button.fetch', panel);
  panel.innerHTML = await res.text();
  if (bar && !bar.hidden && $('progress', panel)) $('progress', panel).replaceWith(bar);
  if (out && out.textContent && $('.fetched', panel)) $('.fetched', panel).replaceWith(out);
  if (button && button.disabled && $('button.fetch', panel)) $('button.fetch', panel).disabled = true;
}

document.addEventListener('submit', async (e) => {
  const buy = e.target.closest('form.buy');
  if (!buy) return;
  e.preventDefault();
  const button = $('button', buy);
  button.disabled = true;
  try {
    const outcome = await post(`/ui/packs/${buy.dataset.pack}/buy`, {
      payment_ref: buy.elements.payment_ref.value,
    });
    say(`order ${outcome.status}`);
    await refreshLicence();
  } catch (err) {
    say(err.message);
    button.disabled = false;
  }
});

document.addEventListener('click', async (e) => {
  const fetchButton = e.target.closest('button.fetch');
  if (fetchButton) {
    fetchButton.disabled = true;
    const bar = $('#licence progress');
    if (bar) bar.hidden = false;
    try {
      await post(`/ui/packs/${fetchButton.dataset.pack}/fetch`);
      say('downloading…');
    } catch (err) {
      say(err.message);
      fetchButton.disabled = false;
    }
    return;
  }
  const show = e.target.closest('button.show');
  if (show) {
    try {
      const r = await post('/ui/show-in-folder', { path: show.dataset.path });
      say(r.opened ? `opened ${r.path}` : `could not open a file manager (${r.reason})`);
    } catch (err) {
      say(err.message);
    }
    return;
  }
  const approve = e.target.closest('button.approve');
  const reject = e.target.closest('button.reject');
  if (approve || reject) {
    const button = approve || reject;
    button.disabled = true;
    try {
      if (approve) {
        await post(`/ui/sales/${button.dataset.order}/approve`);
      } else {
        const reason = $('input.reason', button.closest('tr'))?.value ?? '';
        await post(`/ui/sales/${button.dataset.order}/reject`, { reason });
      }
      await refreshSection('/sales', '#orders');
    } catch (err) {
      say(err.message);
      button.disabled = false;
    }
    return;
  }
  const retract = e.target.closest('button.retract');
  if (retract) {
    if (!confirm('Retract this pack? Peers remove it from their listings.')) return;
    try {
      await post(`/ui/packs/${retract.dataset.pack}/retract`);
      retract.closest('tr').remove();
      say('retracted');
    } catch (err) {
      say(err.message);
    }
  }
});

function onDownload(data) {
  const panel = $('#licence');
  if (!panel || panel.dataset.pack !== data.pack_id) return;
  const bar = $('progress', panel);
  const out = $('.fetched', panel);
  const ev = data.event;
  if (ev.event === 'started' && bar) {
    bar.hidden = false;
    bar.max = Math.max(1, ev.bytes);
    bar.value = 0;
  } else if (ev.event === 'progress' && bar) {
    bar.value = ev.bytes;
  } else if (ev.event === 'done') {
    if (bar) bar.value = bar.max;
    if (out) {
      out.textContent = `Downloaded ${ev.files} files to ${ev.path} `;
      const show = document.createElement('button');
      show.type = 'button';
      show.className = 'show';
      show.dataset.path = ev.path;
      show.textContent = 'Show in folder';
      out.append(show);
      out.classList.add('done');
    }
    say('download complete');
  } else if (ev.event === 'error') {
    if (out) out.textContent = ev.message;
    const button = $('button.fetch', panel);
    if (button) button.disabled = false;
  }
}

// ---- sections refreshed in place ----------------------------------------------

async function refreshSection(url, selector) {
  const target = $(selector);
  if (!target) return;
  const res = await fetch(url, { credentials: 'same-origin' });
  const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
  const fresh = $(selector, doc);
  if (fresh) target.innerHTML = fresh.innerHTML;
}

// ---- connect to a friend -----------------------------------------------------------

const connectForm = $('#connect');
if (connectForm) {
  connectForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = $('button', connectForm);
    button.disabled = true;
    say('connecting…');
    try {
      const peer = await post('/ui/connect', { addr: connectForm.elements.addr.value });
      say(`connected to ${peer.node_id.slice(0, 8)}`);
      connectForm.reset();
      await refreshSection('/network', '#peers');
    } catch (err) {
      say(err.message);
    } finally {
      button.disabled = false;
    }
  });
}

// ---- publish -------------------------------------------------------------------

const publishForm = $('#publish');
if (publishForm) {
  let checkTimer = 0;
  const dir = publishForm.elements.dir;
  dir.addEventListener('input', () => {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(async () => {
      const res = await fetch(`/ui/publish/check?dir=${encodeURIComponent(dir.value)}`, { credentials: 'same-origin' });
      const r = await res.json();
      const check = $('#dir-check');
      check.textContent = r.message;
      check.className = `check ${r.ok ? 'ok' : 'bad'}`;
    }, 150);
  });
  publishForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = Object.fromEntries(new FormData(publishForm));
    const analysis = $('#analysis');
    analysis.textContent = 'Analysing…';
    $('#publish-progress').hidden = false;
    try {
      const r = await post('/ui/publish/analyse', body);
      analysis.innerHTML = r.html;
      if (r.draft) {
        const actions = document.createElement('p');
        actions.className = 'actions';
        const sign = document.createElement('button');
        sign.type = 'button';
        sign.id = 'sign';
        sign.textContent = `Sign and publish ${r.files} files`;
        const cancel = document.createElement('button');
        cancel.type = 'button';
        cancel.id = 'cancel';
        cancel.textContent = 'Cancel';
        actions.append(sign, ' ', cancel);
        analysis.append(actions);
        sign.addEventListener('click', async () => {
          sign.disabled = cancel.disabled = true;
          try {
            const out = await post('/ui/publish/sign', { draft: r.draft });
            const done = document.createElement('p');
            done.className = 'msg note published';
            const link = document.createElement('a');
            link.href = `/packs/${out.pack_id}`;
            link.textContent = body.title;
            done.append('Published ', link, ` (version ${out.seq}, ${out.samples} samples).`);
            actions.replaceWith(done);
          } catch (err) {
            say(err.message);
            sign.disabled = cancel.disabled = false;
          }
        });
        cancel.addEventListener('click', async () => {
          await post('/ui/publish/cancel', { draft: r.draft });
          actions.textContent = 'Cancelled: nothing was published.';
        });
      }
    } catch (err) {
      analysis.textContent = err.message;
    }
  });
}

function onPublish(data) {
  const bar = $('#publish-progress');
  if (!bar) return;
  bar.hidden = false;
  bar.max = Math.max(1, data.total);
  bar.value = data.done;
  say(`${data.stage === 'analyse' ? 'analysed' : 'imported'} ${data.done} of ${data.total}`);
}

// ---- drag into a DAW -------------------------------------------------------------

document.addEventListener('dragstart', (e) => {
  const link = e.target.closest('a.drag');
  if (!link) return;
  const name = link.dataset.name.split('/').pop();
  const type = /\.wav$/i.test(name) ? 'audio/wav' : 'application/octet-stream';
  e.dataTransfer.setData('DownloadURL', `${type}:${name}:${link.href}`);
});

// ---- live changes ------------------------------------------------------------------

// One stream per page, closed when the page is left: a page kept in the
// back-forward cache must not hold one of the browser's few connections per host.
function listen() {
  const events = new EventSource('/ui/events');
  events.addEventListener('purchases', () => refreshLicence());
  events.addEventListener('sales', () => {
    refreshSection('/sales', '#orders');
    refreshLicence();
  });
  events.addEventListener('listings', () => {
    if (form && !document.activeElement?.matches?.('tr.hit')) refreshResults();
    refreshSection('/network', '#listings');
  });
  events.addEventListener('download', (e) => onDownload(JSON.parse(e.data)));
  events.addEventListener('publish', (e) => onPublish(JSON.parse(e.data)));
  window.smplEvents = events;
}

if (window.EventSource) {
  listen();
  window.addEventListener('pagehide', () => window.smplEvents?.close());
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) {
      listen();
      refreshLicence();
    }
  });
}

initRows();
