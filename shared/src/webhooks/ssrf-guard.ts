import dns from 'node:dns';
import net from 'node:net';
import ipaddr from 'ipaddr.js';
import { CallbackUrlError } from '../domain-errors';

/**
 * Keeps webhooks from being pointed at the service's own network (SSRF). A callback URL must be
 * absolute http(s) without credentials, and every address its host resolves to must be a public
 * unicast address: loopback, private (RFC 1918), unique-local (fc00::/7), link-local
 * (169.254/16 — cloud metadata at 169.254.169.254 included — and fe80::/10), unspecified,
 * multicast, broadcast, carrier-grade NAT (100.64/10), reserved and documentation ranges are
 * refused, and so are those addresses written inside IPv6 (IPv4-mapped `::ffff:a.b.c.d`,
 * IPv4-translated, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`); 6to4 and Teredo are
 * refused outright. WEBHOOK_ALLOW_HOSTS lifts the rule for named hosts, addresses and CIDRs.
 *
 * The check runs at submit time (a clear 400) and again at delivery, where the request is then
 * made to the checked addresses only (`pinnedLookup`), so a DNS answer that changes between the
 * check and the connection (DNS rebinding) cannot redirect it.
 */
export interface AllowList {
  /** Host names allowed whatever they resolve to (lower case, no trailing dot). */
  readonly hosts: ReadonlySet<string>;
  /** Addresses and networks allowed even when not public. */
  readonly ranges: readonly [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

export const EMPTY_ALLOW_LIST: AllowList = { hosts: new Set(), ranges: [] };

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export interface CheckedCallbackUrl {
  /** The URL normalised (WHATWG), without its fragment. */
  href: string;
  url: URL;
  /** The addresses checked, to connect to (empty when not resolved). */
  addresses: ResolvedAddress[];
}

/** `dns.lookup(host, { all: true })`, replaceable in tests. */
export type LookupAll = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemLookup: LookupAll = async (hostname) =>
  (await dns.promises.lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/**
 * Parses WEBHOOK_ALLOW_HOSTS: comma-separated host names, IP addresses and CIDRs
 * (`hooks.internal, 10.1.2.3, 192.168.0.0/16, fd00::/8`). Throws an Error naming a bad entry.
 */
export function parseAllowList(spec: string): AllowList {
  const hosts = new Set<string>();
  const ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][] = [];
  spec
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .forEach((item, i) => {
      const bare = item.replace(/^\[(.*)\]$/, '$1');
      if (bare.includes('/')) {
        if (!ipaddr.isValidCIDR(bare)) throw new Error(`entry ${i + 1} ('${item}') is not a valid CIDR`);
        const [address, bits] = ipaddr.parseCIDR(bare);
        ranges.push(
          address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()
            ? [(address as ipaddr.IPv6).toIPv4Address(), Math.max(0, bits - 96)]
            : [address, bits],
        );
      } else if (net.isIP(bare) !== 0) {
        const address = unwrapIPv4(ipaddr.parse(bare));
        ranges.push([address, address.kind() === 'ipv4' ? 32 : 128]);
      } else {
        const host = bare.toLowerCase().replace(/\.$/, '');
        if (!HOST_NAME.test(host)) throw new Error(`entry ${i + 1} ('${item}') is neither a host name, an IP address nor a CIDR`);
        hosts.add(host);
      }
    });
  return { hosts, ranges };
}

/** An IPv6 address that carries an IPv4 one (mapped, translated, compatible, NAT64) as that IPv4 address. */
function unwrapIPv4(address: ipaddr.IPv4 | ipaddr.IPv6): ipaddr.IPv4 | ipaddr.IPv6 {
  if (address.kind() === 'ipv4') return address;
  const v6 = address as ipaddr.IPv6;
  const p = v6.parts;
  const low32 = (): ipaddr.IPv4 => new ipaddr.IPv4([(p[6] ?? 0) >> 8, (p[6] ?? 0) & 0xff, (p[7] ?? 0) >> 8, (p[7] ?? 0) & 0xff]);
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  const range = v6.range();
  if (range === 'rfc6145') return low32(); // ::ffff:0:a.b.c.d
  if (range === 'rfc6052' && p[0] === 0x64 && p[1] === 0xff9b && p[2] === 0) return low32(); // 64:ff9b::a.b.c.d
  // ::a.b.c.d (IPv4-compatible, deprecated); :: and ::1 stay what they are.
  if (p.slice(0, 6).every((x) => x === 0) && ((p[6] ?? 0) !== 0 || (p[7] ?? 0) > 1)) return low32();
  return v6;
}

const RANGE_NAMES: Record<string, string> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  private: 'private (RFC 1918)',
  uniqueLocal: 'unique-local (fc00::/7)',
  reserved: 'reserved',
};

/**
 * Null when `address` is a public unicast address; else what it is ('loopback', 'private
 * (RFC 1918)', …). An IPv6 form carrying an IPv4 address is judged as that IPv4 address.
 */
export function forbiddenAddressKind(address: string): string | null {
  if (!ipaddr.isValid(address)) return 'not an IP address';
  const range = unwrapIPv4(ipaddr.parse(address)).range();
  return range === 'unicast' ? null : (RANGE_NAMES[range] ?? range);
}

/** `<address>, a <kind> address` (naming the IPv4 address an IPv6 form carries), or null when public. */
function describeForbidden(address: string): string | null {
  const kind = forbiddenAddressKind(address);
  if (kind === null) return null;
  const inner = ipaddr.isValid(address) ? unwrapIPv4(ipaddr.parse(address)) : null;
  return inner && inner.kind() === 'ipv4' && net.isIPv6(address)
    ? `${address}, which carries ${inner.toString()}, a ${kind} address`
    : `${address}, a ${kind} address`;
}

/** Whether the allow-list names `address` (or a network holding it). */
export function isAllowListed(allowList: AllowList, address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  const inner = unwrapIPv4(ipaddr.parse(address));
  return allowList.ranges.some(([network, bits]) => network.kind() === inner.kind() && inner.match(network, bits));
}

/**
 * Checks a callback URL: syntax and scheme, then (with `resolve`, the default) every address
 * its host resolves to. Throws a CallbackUrlError (400 naming `callbackUrl`) when refused.
 */
export async function checkCallbackUrl(
  url: string,
  allowList: AllowList,
  options: { resolve?: boolean; lookup?: LookupAll } = {},
): Promise<CheckedCallbackUrl> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CallbackUrlError('invalid', 'must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new CallbackUrlError('invalid', 'must use http or https');
  if (parsed.username || parsed.password) throw new CallbackUrlError('invalid', 'must not carry credentials');
  parsed.hash = '';
  const host = parsed.hostname
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase()
    .replace(/\.$/, '');
  if (host === '') throw new CallbackUrlError('invalid', 'must name a host');
  const checked: CheckedCallbackUrl = { href: parsed.href, url: parsed, addresses: [] };
  const literal = net.isIP(host);
  if (options.resolve === false && literal === 0) return checked;

  let addresses: ResolvedAddress[];
  if (literal !== 0) {
    addresses = [{ address: host, family: literal === 6 ? 6 : 4 }];
  } else {
    try {
      addresses = await (options.lookup ?? systemLookup)(host);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new CallbackUrlError('unresolved', `names host '${host}', which could not be resolved (${code})`);
    }
    if (addresses.length === 0) throw new CallbackUrlError('unresolved', `names host '${host}', which resolves to no address`);
  }
  if (!allowList.hosts.has(host)) {
    for (const { address } of addresses) {
      if (isAllowListed(allowList, address)) continue;
      const described = describeForbidden(address);
      if (described) {
        const where = literal !== 0 ? `is ${described}` : `names host '${host}', which resolves to ${described}`;
        throw new CallbackUrlError(
          'forbidden',
          `${where}; webhooks are only sent to public addresses (WEBHOOK_ALLOW_HOSTS lists exceptions)`,
        );
      }
    }
  }
  checked.addresses = addresses;
  return checked;
}

/**
 * The submit-time check, as the API wires it: `(url) => normalised URL`, throwing a 400
 * problem naming `callbackUrl` when the URL is refused.
 */
export function callbackUrlChecker(
  config: { readonly WEBHOOK_ALLOW_HOSTS: string },
  lookup: LookupAll = systemLookup,
): (url: string) => Promise<string> {
  const allowList = parseAllowList(config.WEBHOOK_ALLOW_HOSTS);
  return async (url) => (await checkCallbackUrl(url, allowList, { lookup })).href;
}

/**
 * A `lookup` for http.request / net.connect that answers only the addresses already checked,
 * so the connection goes where the check looked (no second DNS answer can differ).
 */
export function pinnedLookup(addresses: readonly ResolvedAddress[]): net.LookupFunction {
  return (_hostname, options, callback) => {
    const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 || options.family === 'IPv6' ? 6 : 0;
    const usable = addresses.filter((a) => family === 0 || a.family === family);
    const first = usable[0];
    if (!first) {
      callback(Object.assign(new Error('no checked address of the requested family'), { code: 'ENOTFOUND' }), '', 0);
      return;
    }
    if (options.all)
      callback(
        null,
        usable.map((a) => ({ address: a.address, family: a.family })),
      );
    else callback(null, first.address, first.family);
  };
}
