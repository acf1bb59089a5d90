// The schema of a box definition. Every key is typed and unknown keys are rejected
// (additionalProperties: false everywhere), so a typo in a definition is an error, not a
// silently ignored setting. The TypeScript type of a resolved definition is derived from it.
import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { BOX_COMPRESSIONS, PROVIDERS, STAGES, type Stage } from './names.ts';

export { PROVIDERS, STAGES, type Provider, type Stage } from './names.ts';

const strict = { additionalProperties: false } as const;

/** A string from a fixed list (one `enum`, so a wrong value gets one clear error naming the choices). */
function OneOf<const T extends readonly string[]>(values: T, options: { description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

// Packer runs every string of its template through Go's text/template, so `{{`/`}}` in a value
// would be evaluated on the build host; refused in every free-text value.
const NO_TEMPLATE = '(?!.*(\\{\\{|\\}\\}))';
/**
 * A single line of text: values end up in preseed lines, shell variables and HCL strings. debconf
 * trims surrounding spaces and joins a line ending in `\` with the next, so neither is allowed.
 */
const LINE_PATTERN = `^${NO_TEMPLATE}(?!\\s)[^\\n\\r]*[^\\s\\\\]$`;
const LINE_RULE = 'one line, without {{ or }} (Packer template syntax), surrounding spaces or a trailing \\';
const Line = Type.String({ minLength: 1, pattern: LINE_PATTERN, description: LINE_RULE });
/** A password: a Line whose value error messages never quote. */
const Secret = Type.String({ minLength: 1, pattern: LINE_PATTERN, description: LINE_RULE, writeOnly: true });
const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$' });
const Duration = Type.String({ pattern: '^(\\d+(ms|s|m|h))+$', description: 'e.g. 90m, 1h30m, 45s' });
const PackageName = Type.String({ pattern: '^[a-z0-9][a-z0-9+.:=~-]*$' });
const Url = Type.String({ pattern: `^${NO_TEMPLATE}(https?|file)://[^\\s]+$`, description: 'a URL, without {{ or }}' });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });



const IsoSchema = Type.Object(
  {
    file: Type.String({ pattern: '^[A-Za-z0-9._-]+\\.iso$', description: 'file name in the ISO cache' }),
    urls: Type.Array(Url, { minItems: 1, description: 'the release archive and its mirrors, tried in order' }),
    checksum: Type.String({
      pattern: '^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$',
      // Packer 1.6.6 downloads a file: checksum URL even to validate, so the pin is literal.
      description: 'sha256:<64 hex> or sha512:<128 hex>; md5 and sha1 are too weak to pin a download',
    }),
    checksum_url: Type.Optional(Url),
    checksum_keyring: Type.Optional(
      Type.String({
        pattern: '^/[^\\s{}]+\\.gpg$',
        description: 'the keyring (from a Debian keyring package) that signs checksum_url; the signature is checksum_url + ".gpg"',
      }),
    ),
  },
  strict,
);

const PreseedSchema = Type.Object(
  {
    locale: Line,
    keyboard_layout: Line,
    timezone: Line,
    mirror_host: Line,
    mirror_directory: Line,
    packages: Type.Array(PackageName),
  },
  strict,
);

const InstallerSchema = Type.Object(
  {
    boot_wait: Duration,
    // The one field written for Packer's template engine: `{{ .HTTPIP }}` and `<enter>` are its words.
    boot_command: Type.Array(Type.String({ pattern: '^[^\\n\\r]*$' }), { minItems: 1 }),
    preseed: PreseedSchema,
  },
  strict,
);

const DebootstrapSchema = Type.Object(
  {
    suite: Name,
    mirror: Url,
    security_mirror: Url,
    variant: OneOf(['minbase', 'buildd', 'default']),
    include: Type.Array(PackageName),
    kernel_package: PackageName,
    bootloader: OneOf(['extlinux']),
  },
  strict,
);

const BaseSchema = Type.Object(
  {
    kind: OneOf(['iso', 'debootstrap']),
    iso: Type.Optional(IsoSchema),
    installer: Type.Optional(InstallerSchema),
    debootstrap: Type.Optional(DebootstrapSchema),
  },
  strict,
);

const HardwareSchema = Type.Object(
  {
    cpus: Type.Integer({ minimum: 1, maximum: 64 }),
    memory_mb: Type.Integer({ minimum: 256 }),
    disk_mb: Type.Integer({ minimum: 4096 }),
    lvm: Type.Boolean(),
  },
  strict,
);

const KernelSchema = Type.Object(
  {
    minimum: Type.String({ pattern: '^\\d+\\.\\d+$' }),
    packages: Type.Array(PackageName, { description: 'installed during the build, e.g. the LTS enablement kernel' }),
    cmdline: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.,:/=-]+$' })),
  },
  strict,
);

const VagrantUserSchema = Type.Object(
  {
    name: Name,
    password: Secret,
    root_password: Secret,
  },
  strict,
);

const ChefSchema = Type.Object(
  {
    install: Type.Boolean(),
    source: OneOf(['distro', 'vendor-deb'], {
      description: 'distro: the distribution package; vendor-deb: Chef\'s own omnibus .deb. Never RubyGems.',
    }),
    version: Type.Optional(Line),
    url: Type.Optional(Url),
    sha256: Type.Optional(Sha256),
  },
  strict,
);

const AptRepositorySchema = Type.Object(
  {
    url: Url,
    suite: Name,
    component: Name,
    key_url: Url,
    key_fingerprint: Type.String({ pattern: '^[0-9A-F]{40}$' }),
  },
  strict,
);

/** Docker's static binaries (docker, dockerd, containerd, runc, ...) in one .tgz, pinned by sha256. */
const DockerStaticSchema = Type.Object(
  {
    version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+(-ce)?$', description: 'e.g. 18.06.3-ce' }),
    url: Url,
    sha256: Sha256,
  },
  strict,
);

const DockerSchema = Type.Object(
  {
    install: Type.Boolean(),
    source: OneOf(['distro', 'repository', 'static'], {
      description:
        "distro: the distribution's packages; repository: packages from docker.repository; " +
        "static: Docker's static binaries from docker.static, with an init job boxsmith writes",
    }),
    packages: Type.Array(PackageName, {
      description: 'distro and repository: the Docker packages; static: the packages the binaries need beside them',
    }),
    repository: Type.Optional(AptRepositorySchema),
    static: Type.Optional(DockerStaticSchema),
  },
  strict,
);

const VirtualboxSchema = Type.Object({ guest_os_type: Line, disk_interface: Line }, strict);
const VmwareSchema = Type.Object(
  {
    guest_os_type: Line,
    tools: OneOf(['iso', 'open-vm-tools'], {
      description: 'iso: VMware Tools from the ISO Packer uploads, rebuilt by a kernel hook',
    }),
  },
  strict,
);
const QemuSchema = Type.Object(
  {
    accelerator: OneOf(['auto', 'kvm', 'tcg']),
    cpu_model: Line,
  },
  strict,
);

const BoxSchema = Type.Object(
  {
    compression: OneOf(BOX_COMPRESSIONS, {
      description: "how boxsmith compresses the boxes it packages, every provider's",
    }),
    compression_level: Type.Optional(
      Type.Integer({ description: "the compressor's level (gzip 1-9, zstd 1-19, xz 0-9); absent: its default (gzip 6, zstd 3, xz 6)" }),
    ),
  },
  strict,
);

const TimeoutsSchema = Type.Object(
  Object.fromEntries(STAGES.map((stage) => [stage, Duration])) as Record<Stage, typeof Duration>,
  strict,
);

const definitionProperties = {
  org: Name,
  box_name: Name,
  description: Line,
  os: Type.Object(
    {
      family: OneOf(['ubuntu', 'debian']),
      version: Type.String({ pattern: '^\\d+(\\.\\d+)*$' }),
      codename: Name,
      arch: OneOf(['amd64']),
    },
    strict,
  ),
  base: BaseSchema,
  hardware: HardwareSchema,
  kernel: KernelSchema,
  vagrant_user: VagrantUserSchema,
  packages: Type.Array(PackageName, { description: 'installed into every box of this definition' }),
  chef: ChefSchema,
  docker: DockerSchema,
  providers: Type.Array(OneOf(PROVIDERS), { minItems: 1, uniqueItems: true }),
  virtualbox: VirtualboxSchema,
  vmware: VmwareSchema,
  qemu: QemuSchema,
  box: BoxSchema,
  timeouts: TimeoutsSchema,
};

/** A fully resolved definition: every key required (optional ones say so). */
export const DefinitionSchema = Type.Object(definitionProperties, strict);
export type Definition = Static<typeof DefinitionSchema>;

/**
 * One definition file as written: `extends` and `abstract` are allowed and every key is optional,
 * since a box file only says what differs from its base. Types and unknown keys are still checked.
 */
export const DefinitionFileSchema = Type.Object(
  {
    extends: Type.Optional(Name),
    abstract: Type.Optional(Type.Boolean({ description: 'a base that is not a box of its own' })),
    ...Object.fromEntries(Object.entries(definitionProperties).map(([k, v]) => [k, Type.Optional(partial(v))])),
  },
  strict,
);

/** The schema with every `required` list removed at every depth. */
function partial(schema: TSchema): TSchema {
  const copy: Record<string, unknown> = { ...schema };
  delete copy.required;
  if (copy.properties) {
    copy.properties = Object.fromEntries(
      Object.entries(copy.properties as Record<string, TSchema>).map(([k, v]) => [k, partial(v)]),
    );
  }
  return copy as TSchema;
}
