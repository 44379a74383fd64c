// Reads a DICOMweb root with dicomweb-client (the client of OHIF and of
// NCI's Imaging Data Commons) the way a viewer does, and prints what it
// got as JSON for a Go test to check: every study, its series, their
// instances, the study's and each series' metadata, and frame 1 of each
// instance (with the last frame of multi-frame ones), as byte lengths and
// SHA-256 digests.
//
// usage: node test/dicomweb-client.mjs ROOT [MAX_INSTANCES_PER_SERIES]
// The bearer token, if any, comes from MOSAIC_DICOMWEB_TOKEN (never from
// the command line, where other users could read it).
import { createHash } from 'node:crypto';
import XMLHttpRequest from 'xhr2';
import { api } from 'dicomweb-client';

globalThis.XMLHttpRequest = XMLHttpRequest;

const [root, maxArg] = process.argv.slice(2);
if (!root) {
  console.error('usage: node test/dicomweb-client.mjs ROOT [MAX_INSTANCES_PER_SERIES]');
  process.exit(2);
}
const maxInstances = Number(maxArg || 0);
const headers = {};
if (process.env.MOSAIC_DICOMWEB_TOKEN) headers.Authorization = `Bearer ${process.env.MOSAIC_DICOMWEB_TOKEN}`;
const client = new api.DICOMwebClient({ url: root.replace(/\/+$/, ''), headers, verbose: false });

const first = (ds, tag) => ds?.[tag]?.Value?.[0];
const uid = (ds, tag) => {
  const v = first(ds, tag);
  if (typeof v !== 'string' || v === '') throw new Error(`an answer lacks ${tag}`);
  return v;
};

function describeError(err) {
  // dicomweb-client rejects with an Error carrying the request's status
  // (0 when nothing answered).
  if (err && typeof err === 'object' && err.status === 0) return 'no answer from the server (refused, cut or timed out)';
  if (err && typeof err === 'object' && 'status' in err) return `HTTP ${err.status} ${err.message || ''}`.trim();
  return String(err?.message || err);
}

async function main() {
  const out = { root, studies: [] };
  const studies = await client.searchForStudies();
  for (const st of studies) {
    const studyInstanceUID = uid(st, '0020000D');
    const study = { uid: studyInstanceUID, series: [] };
    const studyMeta = await client.retrieveStudyMetadata({ studyInstanceUID });
    study.metadata_instances = studyMeta.length;
    const series = await client.searchForSeries({ studyInstanceUID });
    for (const se of series) {
      const seriesInstanceUID = uid(se, '0020000E');
      const s = { uid: seriesInstanceUID, modality: first(se, '00080060') || '', frames: [] };
      const instances = await client.searchForInstances({ studyInstanceUID, seriesInstanceUID });
      s.instances = instances.map((i) => uid(i, '00080018')).sort();
      const meta = await client.retrieveSeriesMetadata({ studyInstanceUID, seriesInstanceUID });
      s.metadata_instances = meta.length;
      const chosen = maxInstances > 0 ? meta.slice(0, maxInstances) : meta;
      for (const m of chosen) {
        const sopInstanceUID = uid(m, '00080018');
        const nframes = Number(first(m, '00280008') ?? 1) || 1;
        const numbers = nframes > 1 ? [1, nframes] : [1];
        const frames = await client.retrieveInstanceFrames({
          studyInstanceUID, seriesInstanceUID, sopInstanceUID, frameNumbers: numbers,
        });
        if (frames.length !== numbers.length) throw new Error(`asked for ${numbers.length} frames, got ${frames.length}`);
        frames.forEach((buf, k) => {
          const bytes = new Uint8Array(buf);
          s.frames.push({
            sop: sopInstanceUID,
            frame: numbers[k],
            rows: first(m, '00280010'),
            columns: first(m, '00280011'),
            bits_allocated: first(m, '00280100'),
            samples_per_pixel: first(m, '00280002') ?? 1,
            bytes: bytes.length,
            sha256: createHash('sha256').update(bytes).digest('hex'),
          });
        });
      }
      study.series.push(s);
    }
    out.studies.push(study);
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  console.error(`dicomweb-client: ${describeError(err)}`);
  process.exit(1);
});
