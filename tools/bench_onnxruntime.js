// Times ONNX Runtime (onnxruntime-node, CPU) on an ONNX model: the side-by-side baseline for
// `yolopipe bench`. Usage: node bench_onnxruntime.js MODEL.onnx BATCH IMGSZ THREADS REPEATS WARMUP
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, batch, imgsz, threads, repeats, warmup] = process.argv.slice(2);
  const b = Number(batch), s = Number(imgsz);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  const data = new Float32Array(b * 3 * s * s);
  let state = 12345;
  for (let i = 0; i < data.length; ++i) {
    state = (state * 1103515245 + 12345) >>> 0;
    data[i] = (state >>> 8) / 16777216;
  }
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [b, 3, s, s])};
  const times = [];
  for (let i = 0; i < Number(warmup) + Number(repeats); ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (i >= Number(warmup)) times.push(ms);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)], best = times[0];
  console.log(`onnxruntime ${ort.env.versions ? ort.env.versions.common : ''} batch ${b}: ` +
              `median ${median.toFixed(2)} ms/batch (${(b * 1000 / median).toFixed(2)} img/s, ` +
              `${(median / b).toFixed(2)} ms/img), min ${best.toFixed(2)} ms/batch ` +
              `(${(b * 1000 / best).toFixed(2)} img/s)`);
}

main().catch((e) => {
  console.error('error: ' + e.message);
  process.exit(1);
});
