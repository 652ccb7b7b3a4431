// @ts-check
// A third-party SOURCE plugin written only against the public kt-edge-face-sdk package: plays the image files of a folder
// (JPEG, PNG, WebP; sorted by name) as a camera at a fixed rate, once or in a loop.
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { Type, definePlugin } from 'kt-edge-face-sdk';

/**
 * @typedef {object} SlideshowOptions
 * @property {string} folder  Folder with the images. Required.
 * @property {number} fps     Frames per second. Default 2.
 * @property {boolean} loop   Start again after the last image. Default true.
 */

const imageExtensions = new Set(['.jpg', '.jpeg', '.png', '.webp']);

export const slideshowSource = definePlugin({
  kind: 'source',
  name: 'slideshow',
  description: 'plays the images of a folder as a camera, at a fixed rate',
  schema: Type.Object(
    {
      folder: Type.String({ minLength: 1, default: '', description: 'Folder with the images. Required.' }),
      fps: Type.Number({ exclusiveMinimum: 0, maximum: 60, default: 2, description: 'Frames per second. Default 2.' }),
      loop: Type.Boolean({ default: true, description: 'Start again after the last image. Default true.' }),
    },
    { additionalProperties: false },
  ),
  create({ options, log }) {
    const o = /** @type {SlideshowOptions} */ (options);
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    let shown = 0;
    return {
      /** @param {import('kt-edge-face-sdk').SourceContext} ctx */
      async onStart(ctx) {
        const files = (await readdir(o.folder)).filter((f) => imageExtensions.has(extname(f).toLowerCase())).sort();
        if (files.length === 0) {
          // Not a failure of the plugin: the camera has nothing to show. The host reports the camera offline.
          ctx.setState('offline', `no images in ${o.folder}`);
          return;
        }
        ctx.setState('online');
        log.info({ folder: o.folder, images: files.length }, 'slideshow started');
        let next = 0;
        timer = setInterval(() => {
          if (next >= files.length) {
            if (!o.loop) {
              clearInterval(timer);
              ctx.setState('offline', 'end of the slideshow');
              return;
            }
            next = 0;
          }
          const file = join(o.folder, /** @type {string} */ (files[next++]));
          readFile(file).then(
            (image) => {
              if (ctx.signal.aborted) return;
              shown += 1;
              ctx.emit({ image });
            },
            // A vanished file is worth a restart: the host re-reads the folder after a backoff.
            (error) => ctx.fail(error),
          );
        }, 1000 / o.fps);
      },
      onStop() {
        clearInterval(timer);
      },
      stats: () => ({ shown }),
    };
  },
});
