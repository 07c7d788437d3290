import { ManPage, paragraph } from './manual-page';

export const GIT_REMOTE_KMSCRYPT_PAGE: ManPage = {
  name: 'git-remote-kmscrypt',
  purpose: 'git remote helper for repositories stored encrypted in S3-compatible storage or a local directory',
  synopsis: ['git clone kmscrypt::<url> [<directory>]', 'git remote add <name> kmscrypt::<url>', 'git-remote-kmscrypt <remote> [<url>]'],
  sections: [
    {
      title: 'DESCRIPTION',
      blocks: [
        paragraph(
          'git runs git-remote-kmscrypt for every URL that begins with `kmscrypt::` (see gitremote-helpers(7)); it is not meant to be run by hand. It stores every git object in an S3 bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2) or a local directory, encrypted on the client: each push is sealed under a new data key from the key provider (AWS KMS, or a local keyring file), bound to the repository ID as the KMS encryption context. The store sees no file, commit message, ref name or object ID.',
        ),
        paragraph(
          'git push (branches and tags, --all, --tags, --mirror, --delete, --force, --force-with-lease, --atomic, --dry-run), fetch, pull, clone (also --mirror) and ls-remote work as with any remote. A non-fast-forward update is refused at the moment the push publishes, against the remote as it is then, so concurrent pushes are never lost. Shallow and partial clones and fetches (--depth, --deepen, --unshallow, --shallow-since, --shallow-exclude, --filter=blob:none, blob:limit=<n>, tree:<depth>) read only the objects they need, and the missing objects of a partial clone are fetched on demand. Push options and signed pushes are not supported.',
        ),
        paragraph(
          'Pushing to a location that holds no repository creates one. Everything read is authenticated before git sees it; a tampered, truncated or rolled-back store stops the command with no ref changed. Submodules with kmscrypt:: URLs need `git config --global protocol.kmscrypt.allow always`: git lets submodules use only the protocols it knows.',
        ),
      ],
    },
    {
      title: 'URLS',
      blocks: [
        {
          kind: 'definitions',
          items: [
            {
              term: 'kmscrypt::file:///<path>, kmscrypt::/<path>, kmscrypt::./<path>, kmscrypt::../<path>',
              description: 'a local directory; a relative path is resolved from the directory git runs in',
            },
            { term: 'kmscrypt::s3://[<profile>@]<bucket>[/<prefix>]', description: 'an S3 bucket and key prefix, optionally with a named AWS profile' },
            { term: 'kmscrypt::<bucket>[/<prefix>]', description: 'S3, short form: a bare word is a bucket, so local paths need /, ./ or file://' },
            { term: '...?region=<region>&endpoint=<https-url>', description: 'an S3 URL with an explicit region or endpoint' },
          ],
        },
      ],
    },
    {
      title: 'CONFIGURATION',
      blocks: [
        paragraph(
          'Each setting is read from, in this order: the URL (region and endpoint), the environment variable, `git config remote.<name>.kmscrypt<Setting>` (one remote), `git config kmscrypt.<setting>` (any scope, or `git clone -c`), then the default. For the region, endpoint and profile, the AWS variables come before git config. Booleans accept true/false/yes/no/on/off/1/0.',
        ),
        {
          kind: 'definitions',
          items: [
            { term: 'kmscrypt.kms, KMSCRYPT_KMS', description: 'the key provider, `local` or `aws`; default `local` for directories, `aws` for S3' },
            {
              term: 'kmscrypt.keyId, KMSCRYPT_KEY_ID',
              description:
                'the KMS key: key ID, key ARN, alias name or alias ARN; default the key the repository already uses, else `alias/kmscrypt` (created on first use)',
            },
            {
              term: 'kmscrypt.keyring, KMSCRYPT_KEYRING',
              description: 'the local keyring file; default `$XDG_CONFIG_HOME/kmscrypt/keyring.json`, i.e. ~/.config/kmscrypt/keyring.json',
            },
            { term: 'kmscrypt.region, AWS_REGION, AWS_DEFAULT_REGION', description: "the S3 region; default the AWS profile's" },
            { term: 'kmscrypt.endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL', description: 'an S3 endpoint other than AWS (MinIO, Ceph, R2)' },
            { term: 'kmscrypt.kmsEndpoint, AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL', description: 'a KMS endpoint other than AWS' },
            { term: 'kmscrypt.profile, AWS_PROFILE', description: 'the AWS profile for S3 (and KMS)' },
            { term: 'kmscrypt.kmsRegion', description: 'the KMS region, when KMS is not where the bucket is; default the S3 region' },
            { term: 'kmscrypt.kmsProfile', description: "the AWS profile for KMS, when its credentials differ from the bucket's" },
            { term: 'kmscrypt.pathStyle', description: 'path-style S3 requests; default true when an endpoint is set, else virtual-hosted' },
            { term: 'kmscrypt.allowHttp, KMSCRYPT_ALLOW_HTTP', description: 'accept a plain-HTTP endpoint that is not loopback (default false)' },
            {
              term: 'kmscrypt.allowUnsafeServer, KMSCRYPT_ALLOW_UNSAFE_SERVER',
              description: 'accept an S3 server that ignores conditional writes, where concurrent pushes could be lost (default false)',
            },
            {
              term: 'kmscrypt.requestTimeout, KMSCRYPT_REQUEST_TIMEOUT',
              description: 'seconds an S3 connection may stay silent before the request is abandoned and retried, 1 to 3600 (default 60)',
            },
          ],
        },
      ],
    },
    {
      title: 'ENVIRONMENT',
      blocks: [
        paragraph(
          "Besides the variables above, AWS credentials come from the AWS SDK's default chain, as for the AWS CLI: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, the files ~/.aws/credentials and ~/.aws/config (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE; SSO, credential_process), container and instance roles.",
        ),
        {
          kind: 'definitions',
          items: [
            {
              term: 'KMSCRYPT_TRACE',
              description:
                "traces each storage request, S3 HTTP attempt and KMS call with its time, never key material: 1 or 2 on stderr, 3 to 9 to that file descriptor, an absolute path appended to. When it is unset, GIT_TRACE does the same, and git's -vv traces to stderr.",
            },
            { term: 'KMSCRYPT_DEBUG', description: 'set to 1: an unexpected error is followed by its stack trace' },
            {
              term: 'KMSCRYPT_CODE_CACHE',
              description: "set to 0: compile the helper's modules and the AWS SDK from source in every run, without the code cache (see FILES)",
            },
          ],
        },
      ],
    },
    {
      title: 'FILES',
      blocks: [
        {
          kind: 'definitions',
          items: [
            {
              term: '~/.config/kmscrypt/keyring.json',
              description: 'the local keyring, created on first use with mode 0600. Without it the repositories it protects cannot be decrypted: back it up.',
            },
            {
              term: '$GIT_DIR/kmscrypt/',
              description:
                'what this clone has seen of each repository: its ID at each URL, the newest generation and the trusted key, used to refuse rollbacks and keys you did not choose',
            },
            {
              term: '~/.cache/git-remote-kmscrypt/',
              description:
                "($XDG_CACHE_HOME/git-remote-kmscrypt/) V8's compiled code of the helper's modules and the AWS SDK, so that a run that loads the SDK (S3, AWS KMS) starts 30-50 ms sooner; mode 0700, used only while it is yours and no one else can write to it. It holds no repository data and may be deleted at any time.",
            },
          ],
        },
      ],
    },
    {
      title: 'EXIT STATUS',
      blocks: [
        paragraph(
          '0 on success. On failure the helper prints one line on stderr, `fatal: kmscrypt: <cause>`, usually followed by the fix, and exits with 128 (129 when run with the wrong arguments); git then reports the failure in its own words.',
        ),
      ],
    },
    {
      title: 'EXAMPLES',
      blocks: [
        {
          kind: 'example',
          lines: [
            'git push kmscrypt::/srv/encrypted/project main',
            'git clone kmscrypt::s3://my-bucket/repos/project',
            'git remote add origin kmscrypt::s3://work@my-bucket/repos/project?region=eu-west-1',
            'git config --global kmscrypt.keyId alias/team-repos',
          ],
        },
      ],
    },
    {
      title: 'SEE ALSO',
      blocks: [
        paragraph(
          'git-kmscrypt(1), gitremote-helpers(7), git(1). The guides that come with the package (its README.md and docs/, in `$(npm root -g)/git-remote-kmscrypt`) cover S3 servers, KMS keys and permissions, the security model and troubleshooting.',
        ),
      ],
    },
  ],
};
