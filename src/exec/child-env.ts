// The environment boxsmith gives every program it starts: its own, without the registry secrets.
// Only publish's in-process HTTP client uses those; Packer, QEMU, the shared daemons, vagrant, gdb
// and the watchdog never need them, and a child's environment is readable in /proc by its user
// (and by whatever the child starts or logs).

const REGISTRY_SECRET = /^(VAGRANT_CLOUD_TOKEN|ATLAS_TOKEN|HCP_\w*)$/;

/** `env` without the variables that hold registry credentials. */
export function childEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !REGISTRY_SECRET.test(name)));
}
