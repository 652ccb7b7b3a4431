// `kt gallery reembed`: moves an identity gallery to another embedding model from its kept enrolment faces.
import { parse, type RegisterCommand } from '../core/cli-args.js';
import { InvalidInputError } from '../core/errors.js';

const help = `kt gallery reembed --model NAME [options]
  Recomputes every enrolled person's embeddings with model NAME from the enrolment face crops the gallery keeps
  (5-point aligned PNGs stored with each person since gallery schema 2), so nobody has to enrol again. The model's
  earlier embeddings are replaced in one transaction; other models' embeddings stay. Then serve identity with it:
  taskModels.identity = NAME in the server config. People enrolled before faces were kept are listed: they must enrol again.
  Run it with the server stopped, or restart the server afterwards: a running server keeps the embeddings it has cached.

  --model NAME           embedding model of the repository (e.g. facerec, faceres)
  --version N            model version (default: the highest)
  --gallery FILE         identity gallery SQLite file (default kt-gallery.db)
  --repo DIR             model repository (default $KT_MODEL_REPOSITORY, else model-repository/ in the package)
  --help                 print this help
`;

export function registerGalleryCommands(register: RegisterCommand): void {
  register('gallery reembed', "recompute a gallery's embeddings with another model from its kept enrolment faces", async (argv) => {
    const { values } = parse(argv, {
      model: { type: 'string' },
      version: { type: 'string' },
      gallery: { type: 'string', default: 'kt-gallery.db' },
      repo: { type: 'string' },
      help: { type: 'boolean', default: false },
    });
    if (values.help) {
      process.stdout.write(help);
      return 0;
    }
    if (!values.model) throw new InvalidInputError('kt gallery reembed needs --model NAME (an embedding model of the repository)');
    const version = values.version === undefined ? undefined : Number(values.version);
    if (version !== undefined && !(Number.isInteger(version) && version > 0))
      throw new InvalidInputError(`--version expects a positive integer, got "${values.version}"`);
    const { reembedGallery } = await import('./gallery/reembed.js');
    const report = await reembedGallery(values.gallery, values.model, {
      ...(values.repo !== undefined ? { repo: values.repo } : {}),
      ...(version !== undefined ? { version } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `${values.gallery}: ${report.people} people, ${report.faces} faces re-embedded with ${report.model.name}@${report.model.version}\n`,
    );
    for (const p of report.withoutFaces) process.stdout.write(`  no kept enrolment face: ${p.name} (${p.id}): enrol again\n`);
    return 0;
  });
}
