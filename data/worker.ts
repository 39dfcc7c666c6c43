/**
 * The body of a data worker (see workers.ts): decodes and preprocesses image files, and assembles
 * augmented batches from images shared through SharedArrayBuffers.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type BatchOptions, type Dataset, makeBatch } from "./dataset.ts";
import { decodeImage } from "./image.ts";
import { resizeAndCentreCrop } from "./resize.ts";
import type { Job } from "./workers.ts";

self.onmessage = async (e: MessageEvent<{ id: number; job: Job }>) => {
  const { id, job } = e.data;
  if (job.kind === "decode") {
    try {
      const picture = decodeImage(await Deno.readFile(job.path), job.channels);
      const { data } = resizeAndCentreCrop(picture, job.size);
      self.postMessage({ id, result: { data } }, [data.buffer as ArrayBuffer]);
    } catch (error) {
      self.postMessage({
        id,
        result: { error: `${(error as Error).name}: ${(error as Error).message}` },
      });
    }
  } else {
    const { dataset, indices, options } = job.args as {
      dataset: Dataset;
      indices: Int32Array;
      options: BatchOptions;
    };
    const batch = makeBatch(dataset, indices, options);
    self.postMessage({ id, result: batch }, [batch.input.buffer as ArrayBuffer]);
  }
};
