// Errors of publishing. Each is an expected failure: the CLI prints its message (no stack trace)
// and exits 2 for a wrong command line, 1 for everything else.

/** The command line or the target specification is wrong. */
export class PublishUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublishUsageError';
  }
}

/** Publishing could not start or could not finish; the message says why and what to do. */
export class PublishError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PublishError';
  }
}

/** An API answered with an error status that retrying will not fix (4xx, or 5xx after the retries). */
export class ApiResponseError extends Error {
  constructor(
    message: string,
    readonly statusCode: number,
  ) {
    super(message);
    this.name = 'ApiResponseError';
  }
}

/**
 * The registry answered that it, or box creation, is closed: HashiCorp is retiring Vagrant Cloud /
 * HCP Vagrant (hashicorp/vagrant#13836). Nothing is retried and nothing more is sent.
 */
export class ServiceClosedError extends PublishError {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceClosedError';
  }
}
