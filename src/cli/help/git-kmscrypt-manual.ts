import { CommandDoc, ManPage, paragraph } from './manual-page';

const JSON_OPTION = { flags: '--json', description: 'print the result as one JSON object on stdout instead of text' };

/**
 * Every `git kmscrypt` command, in the order `git kmscrypt help` lists them. The dispatcher
 * (git-kmscrypt.ts) runs a command only if it is described here, so each has a manual entry.
 */
export const COMMAND_DOCS: readonly CommandDoc[] = [
  {
    name: 'init',
    synopsis: '<url> [--object-format sha1|sha256] [-b | --initial-branch <name>] [--json]',
    summary: 'create an empty encrypted repository and print its ID',
    description: [
      'Creates an empty encrypted repository at <url> and prints its repository ID, the KMS encryption context of every data key it will use. A first push creates a repository too; `init` is for when the ID is needed earlier, for example in a key policy condition.',
      'Its HEAD names the initial branch, as `git init --bare` does: a clone of the empty repository checks that branch out, and the first push keeps it when it pushes that branch.',
    ],
    options: [
      {
        flags: '--object-format sha1|sha256',
        description: "the object format of the repositories that will push to it (default: the current repository's, else sha1)",
      },
      { flags: '-b, --initial-branch <name>', description: 'the branch HEAD names (default: init.defaultBranch, else master, as git init)' },
      JSON_OPTION,
    ],
  },
  {
    name: 'info',
    synopsis: '<remote-or-url> [--json]',
    summary: 'show repository ID, KMS key, generation, refs, containers, bytes stored, and its CloudTrail query',
    description: [
      'Shows the repository ID (the KMS encryption context of every data key), the KMS key and its aliases, the object format, the newest manifest generation, the number of refs and containers, the bytes stored, when the repository was created, and how to find its KMS activity in CloudTrail.',
    ],
    options: [JSON_OPTION],
  },
  {
    name: 'verify',
    synopsis: '<remote-or-url> [--json]',
    summary: 'download and authenticate every manifest, container and object; check each ref with git fsck',
    description: [
      "Downloads and authenticates everything the repository stores: every manifest (and that each follows its predecessor), every container of the newest manifest (preamble, index, and every object's AES-GCM tag or HMAC), then has git check every decrypted object and each ref's complete history in a scratch repository (`git index-pack`, `git fsck --strict`, `git rev-list --objects`). Containers the newest manifest does not list are reported as information.",
      'Prints the counts and every problem on a line of its own. Exit status: 0 when all is well, 1 when a problem was found.',
    ],
    options: [JSON_OPTION],
  },
  {
    name: 'doctor',
    synopsis: '<remote-or-url> [--json]',
    summary: 'check URL, settings, store, conditional writes, KMS key and permissions; a fix for each failure',
    description: [
      'Checks, one row each, everything a push and a clone need: the URL and settings; for S3 the credentials, region, HTTPS, that the bucket answers a list request and that the server enforces conditional writes (with a small probe object it deletes again); the repository and its newest manifest; the KMS key (`DescribeKey`: enabled, symmetric, `ENCRYPT_DECRYPT`) and that none of the six KMS actions kmscrypt uses is denied, each exercised once with the repository\'s encryption context (or `{"kmscrypt:repository-id":"doctor-check"}` before the repository exists).',
      'Every FAIL comes with a fix. Exit status: 0 when nothing failed, 1 otherwise.',
    ],
    options: [JSON_OPTION],
  },
  {
    name: 'rotate-key',
    synopsis: '<remote-or-url> --to <key> [--json]',
    summary: 'rewrap every data key under another KMS key (kms:ReEncrypt), without rewriting any object',
    description: [
      'Moves the repository to another KMS key: every data key is rewrapped under it with `kms:ReEncrypt`, without decrypting or rewriting any object, and the next manifest, sealed under a new data key of that key, records it with an endorsement of it made with the old key (`kms:Encrypt`). Pushes then use it (unless `kmscrypt.keyId` names another key). Every clone, old and new, follows the endorsement to the new key with no setting to change.',
      'Nothing changes until that manifest is published, so an interrupted run leaves the repository as it was; run it again to finish. Disable the old key once every clone has fetched since: a clone that still trusts only the old key needs it to check the endorsement.',
    ],
    options: [{ flags: '--to <key>', description: 'the key to move to: key ID, key ARN, alias name or alias ARN (required)' }, JSON_OPTION],
  },
  {
    name: 'set-head',
    synopsis: '<remote-or-url> <branch> [--json]',
    summary: "point the repository's HEAD (the branch a clone checks out) at another branch",
    description: [
      "Points the repository's HEAD at <branch>: the branch a clone checks out, and the one a push may not delete (\"deletion of the current branch prohibited\", as git's receive.denyDeleteCurrent). Like `git symbolic-ref HEAD refs/heads/<branch>` on the server of a bare repository, or a hosting service's default branch setting. Published as the next manifest, with the create-only write a push uses.",
      'The branch must exist, unless the repository has no branch yet: then a clone of the empty repository checks it out and the first push keeps it.',
    ],
    options: [JSON_OPTION],
  },
  {
    name: 'gc',
    synopsis: '<remote-or-url> [--grace <duration>] [--progress | -q] [--json]',
    summary: 'consolidate containers, drop unreachable objects, delete superseded data after a grace period',
    description: [
      'Consolidates every container into one, drops objects no ref reaches, and schedules superseded containers and manifests for deletion. What an earlier gc scheduled is deleted once the grace period has passed, so that readers and pushers already under way never lose their data. A container no manifest lists (an interrupted push, or a push not yet published) is scheduled only once the store has held it for 24 hours. gc publishes its result like a push, with a create-only write, and never runs on its own.',
    ],
    options: [
      { flags: '--grace <duration>', description: 'how long scheduled data is kept before a later gc deletes it: 0, 30s, 10m, 2h, 1d (default 1h)' },
      { flags: '--progress', description: 'show progress on stderr even when it is not a terminal' },
      { flags: '-q, --quiet', description: 'show no progress' },
      JSON_OPTION,
    ],
  },
  {
    name: 'forget',
    synopsis: '<remote-or-url>',
    summary: 'make this clone forget the repository it remembers at a URL (after deliberately deleting or replacing it)',
    description: [
      'Makes this clone forget the repository it remembers at <remote-or-url>: which repository it found there, the newest manifest generation it saw and the KMS key it trusted for it. Use it after deliberately deleting or replacing a repository (for example a first push interrupted with Ctrl-C, whose half-made store you removed): the next push there creates a new repository, the next fetch accepts the one it finds. Reads nothing from the store and changes nothing in it.',
    ],
    options: [],
  },
  {
    name: 'keys',
    synopsis: 'create [--alias <name>] [--description <text>] [--keyring <path>] [--json] | list [--keyring <path>] [--json]',
    summary: 'create and list the master keys of the local keyring (for example a key to rotate to)',
    description: [
      'The master keys of the local keyring (kmscrypt.keyring, else KMSCRYPT_KEYRING, else ~/.config/kmscrypt/keyring.json). `keys create` makes a new enabled key and prints one line: its ID, the ARN kmscrypt records for it, its state and its aliases (comma-separated, or -); an alias already in use is refused. `keys list` prints that line for every key. Then `git config kmscrypt.keyId <ID>` for new repositories, or `git kmscrypt rotate-key <remote> --to <ID>`. Back the keyring up after creating a key.',
    ],
    options: [
      { flags: '--alias <name>', description: 'name the new key alias/<name> ("alias/" is added when missing)' },
      { flags: '--description <text>', description: 'describe the new key' },
      { flags: '--keyring <path>', description: 'the keyring file (default: kmscrypt.keyring, $KMSCRYPT_KEYRING, else ~/.config/kmscrypt/keyring.json)' },
      { flags: '--json', description: 'print JSON instead of lines' },
    ],
  },
  {
    name: 'local-kms',
    synopsis: '[--port <n>] [--keyring <path>] [--region <region>] [--deny <actions>] [--deny-file <path>] [--verbose]',
    summary: 'serve the AWS KMS JSON protocol on 127.0.0.1, backed by the local keyring (development and tests)',
    description: [
      'Serves the AWS KMS JSON protocol on 127.0.0.1, backed by a keyring file, for development and tests. Prints `KMS_ENDPOINT=http://127.0.0.1:<port>` and `KMS_CREDENTIALS_FILE=<path>` on stdout once listening, how to use it on stderr, and runs until SIGTERM or SIGINT.',
      'It serves only its owner: every request must be signed (SigV4) with the access key in local-kms-credentials.json beside the keyring (mode 0600, made on first start); others get UnrecognizedClientException or InvalidSignatureException. kmscrypt signs with that file by itself when the KMS endpoint is on loopback and kmscrypt.kmsProfile is not set: point `KMSCRYPT_KEYRING` at the keyring served, with `AWS_ENDPOINT_URL_KMS=http://127.0.0.1:<port>` and `KMSCRYPT_KMS=aws`. It listens on 127.0.0.1 only and refuses requests whose Host is not 127.0.0.1 or localhost with its port.',
    ],
    options: [
      { flags: '--port <n>', description: 'port to listen on (default 0: a free port)' },
      { flags: '--keyring <path>', description: 'keyring file (default: $KMSCRYPT_KEYRING, else ~/.config/kmscrypt/keyring.json)' },
      { flags: '--region <region>', description: 'region in key ARNs, and the region requests must be signed for (default us-east-1)' },
      {
        flags: '--deny <actions>',
        description:
          'answer these actions with AccessDeniedException, e.g. kms:Decrypt,kms:ReEncrypt; kms:* denies all (also read from KMSCRYPT_LOCAL_KMS_DENY)',
      },
      { flags: '--deny-file <path>', description: 'a file of actions to deny, re-read on every request' },
      { flags: '--verbose', description: 'log each request on stderr: its action, its outcome and its encryption context, as CloudTrail records it' },
    ],
  },
];

export const GIT_KMSCRYPT_PAGE: ManPage = {
  name: 'git-kmscrypt',
  purpose: 'look after repositories stored encrypted by git-remote-kmscrypt',
  synopsis: ['git kmscrypt <command> [<options>]', 'git kmscrypt help [<command>]', 'git kmscrypt --version'],
  sections: [
    {
      title: 'DESCRIPTION',
      blocks: [
        paragraph(
          'git-remote-kmscrypt(1) lets git push to and clone from `kmscrypt::` URLs, storing every object encrypted in S3-compatible storage or a local directory. `git kmscrypt` holds the commands that look after such a repository: create it, inspect it, check it, move it to another KMS key, and clean it up.',
        ),
        paragraph(
          '<remote-or-url> is the name of a configured remote (origin), whose URL and per-remote settings are used, or a URL, with or without the `kmscrypt::` prefix. Settings are read as for pushes and clones: see CONFIGURATION in git-remote-kmscrypt(1).',
        ),
      ],
    },
    { title: 'COMMANDS', blocks: [{ kind: 'commands', commands: COMMAND_DOCS }] },
    {
      title: 'OPTIONS',
      blocks: [
        {
          kind: 'definitions',
          items: [
            { term: '-h, --help', description: "after a command: print that command's usage and options; alone: list the commands" },
            { term: '-V, --version', description: 'print the version of git-remote-kmscrypt' },
          ],
        },
        paragraph("`git kmscrypt --help` and `git help kmscrypt` are git's own: they show this manual page."),
      ],
    },
    {
      title: 'EXIT STATUS',
      blocks: [
        paragraph(
          '0 when the command succeeded; 1 when `verify` or `doctor` found a problem; 129, as git, for a command line that cannot be parsed (an unknown command or option, a missing or extra argument); 128 for any other failure, after one line on stderr, `fatal: kmscrypt: <cause>`, usually followed by the fix.',
        ),
      ],
    },
    {
      title: 'EXAMPLES',
      blocks: [
        {
          kind: 'example',
          lines: [
            'git kmscrypt info origin',
            'git kmscrypt doctor kmscrypt::s3://my-bucket/repos/project',
            'git kmscrypt rotate-key origin --to alias/team-repos',
            'git kmscrypt gc origin --grace 1d',
          ],
        },
      ],
    },
    {
      title: 'SEE ALSO',
      blocks: [
        paragraph(
          'git-remote-kmscrypt(1), git(1). The guides that come with the package (its README.md and docs/, in `$(npm root -g)/git-remote-kmscrypt`) explain S3 servers, KMS keys and permissions, operations, the security model and troubleshooting.',
        ),
      ],
    },
  ],
};
