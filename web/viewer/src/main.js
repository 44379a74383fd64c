// Mosaic's viewer: the series of the studies a DICOMweb root holds,
// one series at a time in a Cornerstone3D stack viewport, with slices
// scrolled (wheel, arrows, buttons) and window/level (drag, fields,
// presets). The root comes from config.json, which the server answers
// for the same query string as the page (on the hub, per permit); every
// request goes to that root on the page's own origin, with the page's
// cookies, so that the hub's session is the credential.
import { api } from 'dicomweb-client';
import {
  RenderingEngine,
  Enums,
  init as coreInit,
} from '@cornerstonejs/core';
import {
  init as loaderInit,
  wadors,
} from '@cornerstonejs/dicom-image-loader';
import {
  init as toolsInit,
  addTool,
  ToolGroupManager,
  StackScrollTool,
  WindowLevelTool,
  PanTool,
  ZoomTool,
  Enums as ToolEnums,
} from '@cornerstonejs/tools';

const $ = (id) => document.getElementById(id);
const viewportId = 'mosaic-stack';
const toolGroupId = 'mosaic-tools';

// Content Security Policy violations are counted where a test (or a
// curious user) can read them.
let violations = 0;
document.addEventListener('securitypolicyviolation', (e) => {
  violations++;
  $('viewport')?.setAttribute('data-csp-violations', String(violations));
  console.error('CSP violation:', e.violatedDirective, e.blockedURI);
});

// describe turns a failure into words: dicomweb-client rejects with an Error
// that carries the request's status and the server's answer.
function describe(err) {
  if (err && typeof err === 'object' && err.status === 0) return 'the server did not answer';
  if (err && typeof err === 'object' && typeof err.status === 'number') {
    const said = err.response && typeof err.response === 'object' && typeof err.response.error === 'string' ? `: ${err.response.error}` : '';
    return `the server answered HTTP ${err.status}${said}`;
  }
  return String(err?.message || err);
}

function say(text, error = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('error', error);
  if (error) $('viewport').dataset.state = 'error';
}

// value reads the first value of a DICOM JSON attribute.
function value(ds, tag) {
  const v = ds?.[tag]?.Value;
  if (!v || v.length === 0) return undefined;
  const x = v[0];
  return typeof x === 'object' && x !== null && 'Alphabetic' in x ? x.Alphabetic : x;
}

async function loadConfig() {
  const resp = await fetch('config.json' + location.search, { credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok) {
    let msg = `the viewer has no DICOMweb root for this page (HTTP ${resp.status})`;
    try { msg = (await resp.json()).error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  const cfg = await resp.json();
  if (typeof cfg.root !== 'string' || cfg.root === '') throw new Error('config.json names no DICOMweb root');
  return { ...cfg, root: new URL(cfg.root, location.href).href.replace(/\/+$/, '') };
}

let client, root, engine, viewport;

function setupViewport() {
  coreInit();
  loaderInit({ maxWebWorkers: 1 });
  toolsInit();
  for (const t of [StackScrollTool, WindowLevelTool, PanTool, ZoomTool]) addTool(t);

  engine = new RenderingEngine('mosaic-engine');
  const element = $('viewport');
  engine.enableElement({ viewportId, type: Enums.ViewportType.STACK, element });
  viewport = engine.getViewport(viewportId);

  const group = ToolGroupManager.createToolGroup(toolGroupId);
  group.addTool(StackScrollTool.toolName);
  group.addTool(WindowLevelTool.toolName);
  group.addTool(PanTool.toolName);
  group.addTool(ZoomTool.toolName);
  const B = ToolEnums.MouseBindings;
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: B.Primary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: B.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: B.Secondary }] });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: B.Wheel }] });
  group.addViewport(viewportId, engine.id);

  element.addEventListener(Enums.Events.IMAGE_RENDERED, showState);
  element.addEventListener('keydown', (e) => {
    const step = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 }[e.key];
    if (step) { e.preventDefault(); scroll(step); }
  });
  element.addEventListener('contextmenu', (e) => e.preventDefault());
  new ResizeObserver(() => engine.resize(true, true)).observe(element);

  $('prev').addEventListener('click', () => scroll(-1));
  $('next').addEventListener('click', () => scroll(1));
  $('apply-wl').addEventListener('click', () => setWindow(Number($('wc').value), Number($('ww').value)));
  $('preset').addEventListener('change', (e) => {
    if (!e.target.value) return;
    const [c, w] = e.target.value.split(',').map(Number);
    setWindow(c, w);
    e.target.value = '';
  });
  $('reset').addEventListener('click', () => { viewport.resetProperties(); viewport.resetCamera(); viewport.render(); });
}

function scroll(step) {
  const n = viewport.getImageIds().length;
  if (n === 0) return;
  const i = Math.min(n - 1, Math.max(0, viewport.getCurrentImageIdIndex() + step));
  viewport.setImageIdIndex(i);
}

function setWindow(centre, width) {
  if (!Number.isFinite(centre) || !Number.isFinite(width) || width < 1) {
    say('window: the centre must be a number and the width a number of at least 1', true);
    return;
  }
  viewport.setProperties({ voiRange: { lower: centre - width / 2, upper: centre + width / 2 } });
  viewport.render();
}

// showState mirrors what is on screen into the page (for tests and
// assistive technology): slice, window/level, render count.
function showState() {
  const el = $('viewport');
  const n = viewport.getImageIds().length;
  const i = viewport.getCurrentImageIdIndex();
  const voi = viewport.getProperties().voiRange;
  el.dataset.index = String(i);
  el.dataset.count = String(n);
  el.dataset.rendered = String(Number(el.dataset.rendered || 0) + 1);
  $('slice').textContent = n ? `slice ${i + 1} of ${n}` : '–';
  if (voi) {
    const w = voi.upper - voi.lower, c = (voi.upper + voi.lower) / 2;
    el.dataset.voi = `${c},${w}`;
    if (document.activeElement !== $('wc') && document.activeElement !== $('ww')) {
      $('wc').value = String(Math.round(c));
      $('ww').value = String(Math.round(w));
    }
  }
  el.dataset.state = 'ready';
}

async function listSeries(studyFilter) {
  const studies = await client.searchForStudies(studyFilter ? { queryParams: { StudyInstanceUID: studyFilter } } : {});
  // Newest first, then by UID, so that the list is the same each time.
  studies.sort((a, b) => String(value(b, '00080020') ?? '').localeCompare(String(value(a, '00080020') ?? ''))
    || String(value(a, '0020000D')).localeCompare(String(value(b, '0020000D'))));
  const nav = $('series');
  nav.replaceChildren();
  const buttons = [];
  for (const st of studies) {
    const studyUID = value(st, '0020000D');
    if (!studyUID) continue;
    const h = document.createElement('h2');
    const date = value(st, '00080020');
    const desc = value(st, '00081030');
    h.textContent = [date && `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}`, desc, value(st, '00080061')?.toString()]
      .filter(Boolean).join(' · ') || 'Study';
    h.title = studyUID;
    nav.append(h);
    const series = await client.searchForSeries({ studyInstanceUID: studyUID });
    series.sort((a, b) => (value(a, '00200011') ?? 0) - (value(b, '00200011') ?? 0));
    for (const se of series) {
      const seriesUID = value(se, '0020000E');
      if (!seriesUID) continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'series';
      b.dataset.study = studyUID;
      b.dataset.series = seriesUID;
      b.setAttribute('aria-pressed', 'false');
      const count = value(se, '00201209');
      b.textContent = [value(se, '00080060') || '?', value(se, '00200011') != null && `#${value(se, '00200011')}`,
        value(se, '0008103E'), count != null && `${count} images`].filter(Boolean).join(' · ');
      b.addEventListener('click', () => openSeries(b));
      nav.append(b);
      buttons.push(b);
    }
  }
  if (buttons.length === 0) nav.textContent = 'No series.';
  return buttons;
}

// imageIds retrieves a series' metadata, hands it to the image loader and
// returns one WADO-RS frame URL per frame, ordered along the stack.
async function imageIds(studyUID, seriesUID) {
  const meta = await client.retrieveSeriesMetadata({ studyInstanceUID: studyUID, seriesInstanceUID: seriesUID });
  const normal = (ds) => {
    const o = ds['00200037']?.Value;
    if (!o || o.length !== 6) return null;
    return [o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]];
  };
  const place = (ds) => {
    const p = ds['00200032']?.Value, n = normal(ds);
    return p && n ? p[0] * n[0] + p[1] * n[1] + p[2] * n[2] : null;
  };
  meta.sort((a, b) => {
    const pa = place(a), pb = place(b);
    if (pa != null && pb != null && pa !== pb) return pb - pa;
    return (value(a, '00200013') ?? 0) - (value(b, '00200013') ?? 0);
  });
  const ids = [];
  for (const ds of meta) {
    const sop = value(ds, '00080018');
    if (!sop) continue;
    const frames = Number(value(ds, '00280008') ?? 1) || 1;
    for (let f = 1; f <= frames; f++) {
      const id = `wadors:${root}/studies/${studyUID}/series/${seriesUID}/instances/${sop}/frames/${f}`;
      wadors.metaDataManager.add(id, ds);
      ids.push(id);
    }
  }
  return ids;
}

async function openSeries(button) {
  for (const b of document.querySelectorAll('#series button')) b.setAttribute('aria-pressed', String(b === button));
  const el = $('viewport');
  el.dataset.state = 'loading';
  el.dataset.series = button.dataset.series;
  say('Loading series…');
  try {
    const ids = await imageIds(button.dataset.study, button.dataset.series);
    if (ids.length === 0) throw new Error('the series has no images');
    await viewport.setStack(ids, Math.floor(ids.length / 2));
    viewport.render();
    say(`${ids.length} images`);
    el.focus();
  } catch (err) {
    say(`Cannot show the series: ${describe(err)}`, true);
  }
}

async function main() {
  try {
    const cfg = await loadConfig();
    root = cfg.root;
    client = new api.DICOMwebClient({ url: root, singlepart: 'bulkdata,video,image', verbose: false });
    setupViewport();
    const params = new URLSearchParams(location.search);
    const buttons = await listSeries(params.get('study') || cfg.study || '');
    if (buttons.length === 0) {
      say('No series to show.');
      $('viewport').dataset.state = 'empty';
      return;
    }
    const want = params.get('series');
    await openSeries(buttons.find((b) => b.dataset.series === want) || buttons[0]);
  } catch (err) {
    say(`The viewer cannot start: ${describe(err)}`, true);
  }
}

main();
