/**
 * The training set's statistics the paper's preprocessing needs: the per-pixel mean image and the
 * principal components of RGB pixel values (for the colour augmentation), computed once and
 * cached in a file beside the dataset, keyed by a fingerprint of the dataset's files.
 *
 * @module
 */
import { type ColourPca, type Dataset, meanImage } from "./dataset.ts";

/**
 * Eigenvectors (rows, unit length) and eigenvalues, largest first, of the 3x3 covariance of RGB
 * values scaled to [0, 1] over every pixel of every image (Jacobi rotations).
 *
 * @example
 * ```ts
 * import { colourPca } from "./statistics.ts";
 * // Two pixels that differ only in red: all variance lies along the red axis.
 * const d = { count: 1, shape: [3, 1, 2] as [number, number, number],
 *   images: new Uint8Array([0, 255, 9, 9, 9, 9]), labels: new Int32Array(1), classes: [] };
 * const { vectors, values } = colourPca(d);
 * console.log(Math.abs(vectors[0]), values[0]); // 1 0.25
 * ```
 */
export function colourPca(d: Dataset): ColourPca {
  const [c, h, w] = d.shape, plane = h * w;
  if (c !== 3) throw new RangeError(`colour PCA needs 3 channels, not ${c}`);
  const sum = new Float64Array(3), cross = new Float64Array(9);
  for (let e = 0; e < d.count; e++) {
    const at = e * 3 * plane;
    for (let p = 0; p < plane; p++) {
      const r = d.images[at + p] / 255;
      const g = d.images[at + plane + p] / 255;
      const b = d.images[at + 2 * plane + p] / 255;
      sum[0] += r, sum[1] += g, sum[2] += b;
      cross[0] += r * r, cross[1] += r * g, cross[2] += r * b;
      cross[4] += g * g, cross[5] += g * b, cross[8] += b * b;
    }
  }
  const n = d.count * plane;
  const a = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => {
      const [lo, hi] = i <= j ? [i, j] : [j, i];
      return cross[3 * lo + hi] / n - (sum[i] / n) * (sum[j] / n);
    })
  );
  const { vectors, values } = symmetricEigen(a);
  const order = [0, 1, 2].sort((i, j) => values[j] - values[i]);
  return {
    vectors: Float32Array.from(order.flatMap((i) => [0, 1, 2].map((r) => vectors[r][i]))),
    values: Float32Array.from(order, (i) => Math.max(0, values[i])),
  };
}

// Cyclic Jacobi eigenvalue iteration for a small symmetric matrix: a = V diag(values) V^T.
function symmetricEigen(m: number[][]): { vectors: number[][]; values: number[] } {
  const n = m.length, a = m.map((r) => [...r]);
  const v = a.map((_, i) => a.map((_, j): number => (i === j ? 1 : 0)));
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (a[p][q] === 0) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cos = 1 / Math.sqrt(t * t + 1), sin = t * cos;
        for (let k = 0; k < n; k++) { // rotate columns p, q
          const akp = a[k][p], akq = a[k][q];
          a[k][p] = cos * akp - sin * akq, a[k][q] = sin * akp + cos * akq;
        }
        for (let k = 0; k < n; k++) { // and rows p, q
          const apk = a[p][k], aqk = a[q][k];
          a[p][k] = cos * apk - sin * aqk, a[q][k] = sin * apk + cos * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k][p], vkq = v[k][q];
          v[k][p] = cos * vkp - sin * vkq, v[k][q] = sin * vkp + cos * vkq;
        }
      }
    }
  }
  return { vectors: v, values: a.map((r, i) => r[i]) };
}

/** The mean image and, for RGB data, the colour PCA. */
export interface Statistics {
  /** Per-pixel mean, scaled to [0, 1]. */
  mean: Float32Array;
  /** Principal components of RGB values (absent for grey images). */
  pca?: ColourPca;
}

/**
 * A fingerprint of a dataset's files: their paths, sizes and modification times, hashed.
 *
 * @example
 * ```ts ignore
 * import { fingerprint } from "./statistics.ts";
 * console.log(await fingerprint(["a.png", "b.png"], "256x256x3"));
 * ```
 */
export async function fingerprint(paths: readonly string[], extra: string): Promise<string> {
  const lines = [extra];
  for (const p of paths) {
    const s = await Deno.stat(p);
    lines.push(`${p}\t${s.size}\t${s.mtime?.getTime() ?? 0}`);
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(lines.join("\n")));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The dataset's statistics, read from `cacheFile` when its fingerprint matches, otherwise
 * computed and written there (best effort: a read-only dataset folder is no error). Returns
 * where they came from.
 *
 * @example
 * ```ts ignore
 * import { datasetStatistics } from "./statistics.ts";
 * const { stats, cached } = await datasetStatistics(train, "photos/.alexnet-statistics.json", fp);
 * ```
 */
export async function datasetStatistics(
  d: Dataset,
  cacheFile: string,
  print: string,
): Promise<{ stats: Statistics; cached: boolean }> {
  try {
    const saved = JSON.parse(await Deno.readTextFile(cacheFile));
    if (
      saved.fingerprint === print && saved.mean?.length === d.shape[0] * d.shape[1] * d.shape[2]
    ) {
      const pca = saved.pca
        ? {
          vectors: Float32Array.from(saved.pca.vectors),
          values: Float32Array.from(saved.pca.values),
        }
        : undefined;
      return { stats: { mean: Float32Array.from(saved.mean), pca }, cached: true };
    }
  } catch {
    // No cache yet, or an unreadable one: compute.
  }
  const stats: Statistics = {
    mean: meanImage(d),
    pca: d.shape[0] === 3 ? colourPca(d) : undefined,
  };
  const json = JSON.stringify({
    fingerprint: print,
    mean: Array.from(stats.mean),
    pca: stats.pca &&
      { vectors: Array.from(stats.pca.vectors), values: Array.from(stats.pca.values) },
  });
  try {
    const tmp = `${cacheFile}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmp, json);
    await Deno.rename(tmp, cacheFile);
  } catch {
    // Read-only dataset: the statistics are recomputed next time.
  }
  return { stats, cached: false };
}
