import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ProblemError, RoleSchema } from '@tandem/contract';
import type { SecretBox } from './secret-box.ts';

/** One paired site as kept on disk: where it is and the credentials to reach it. */
const StoredSiteSchema = z.object({
  id: z.string(),
  site: z.string(),
  address: z.string(),
  certificateFingerprint: z.string(),
  caCertificate: z.string(),
  clientCertificate: z.string(),
  /** The client key, sealed by the SecretBox named in `keyProtection`. */
  clientKey: z.string(),
  keyProtection: z.enum(['none', 'safe-storage']),
  addedAt: z.string(),
  /** The role the agent issued the client certificate for (absent: paired before roles, or with an agent older than them). */
  role: RoleSchema.optional(),
});
export type StoredSite = z.infer<typeof StoredSiteSchema>;

const RegistryFileSchema = z.object({ formatVersion: z.literal(1), sites: z.array(StoredSiteSchema) });

/** A site with its client key opened, ready for an agent client. */
export interface SiteCredentials extends Omit<StoredSite, 'clientKey' | 'keyProtection'> {
  clientKeyPem: string;
}

/**
 * The console's paired sites, persisted as `sites.json` in the config dir
 * (dir 0700, file 0600, written atomically). Removing a site removes its
 * credentials with it.
 */
export class SiteRegistry {
  private sites: StoredSite[] = [];
  private readonly file: string;

  private constructor(
    private readonly dir: string,
    private readonly secrets: SecretBox,
  ) {
    this.file = path.join(dir, 'sites.json');
  }

  static async open(dir: string, secrets: SecretBox): Promise<SiteRegistry> {
    const registry = new SiteRegistry(dir, secrets);
    await registry.load();
    return registry;
  }

  /** Every site without its secrets: what can be shown even when a key cannot be opened here. */
  describe(): Omit<StoredSite, 'clientKey'>[] {
    return this.sites.map(({ clientKey: _key, ...rest }) => rest);
  }

  list(): SiteCredentials[] {
    return this.sites.map((site) => this.opened(site));
  }

  get(id: string): SiteCredentials | undefined {
    const site = this.sites.find((candidate) => candidate.id === id);
    return site && this.opened(site);
  }

  async add(site: SiteCredentials): Promise<void> {
    if (this.sites.some((existing) => existing.id === site.id)) {
      throw new ProblemError('already-exists', `site ${site.site} (${site.address}) is already connected`);
    }
    const { clientKeyPem, ...rest } = site;
    this.sites = [
      ...this.sites,
      { ...rest, clientKey: this.secrets.seal(clientKeyPem), keyProtection: this.secrets.protection },
    ];
    await this.save();
  }

  async remove(id: string): Promise<boolean> {
    const before = this.sites.length;
    this.sites = this.sites.filter((site) => site.id !== id);
    if (this.sites.length === before) return false;
    await this.save();
    return true;
  }

  private opened(site: StoredSite): SiteCredentials {
    // A key kept by file permissions alone opens anywhere; a keychain-sealed one only where that keychain is.
    if (site.keyProtection !== 'none' && site.keyProtection !== this.secrets.protection) {
      throw new ProblemError(
        'access-denied',
        `the key of site ${site.site} was stored with ${site.keyProtection} protection and cannot be opened here; remove and reconnect the site`,
      );
    }
    const { clientKey, keyProtection: _protection, ...rest } = site;
    return { ...rest, clientKeyPem: site.keyProtection === 'none' ? clientKey : this.secrets.open(clientKey) };
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    const parsed = RegistryFileSchema.safeParse(JSON.parse(text) as unknown);
    if (!parsed.success) throw new Error(`${this.file} is not a Tandem site registry: ${parsed.error.message}`);
    this.sites = parsed.data.sites;
  }

  private async save(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    const body = JSON.stringify({ formatVersion: 1, sites: this.sites }, null, 2);
    await writeFile(temporary, body, { mode: 0o600 });
    await chmod(temporary, 0o600);
    try {
      await rename(temporary, this.file);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}
