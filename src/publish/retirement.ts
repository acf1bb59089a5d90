// HashiCorp is winding down HCP Vagrant, which Vagrant Cloud became. The vagrant-cloud and hcp
// targets stay while the service answers; help texts, the README and error messages say so in
// these words, and a registry that answers "closed" ends a publish at once (api-client.ts).
export const HCP_RETIREMENT_ISSUE = 'hashicorp/vagrant#13836';

/** For help texts and documentation. */
export const HCP_RETIREMENT_NOTE =
  `being retired by HashiCorp (${HCP_RETIREMENT_ISSUE}, announced 2026-08-03): box creation stops in the autumn of 2026, ` +
  'operations end between 2026-12-31 and 2027-03-15 depending on the notice; kept while the service answers';
