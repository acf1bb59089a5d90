// A stand-in for the Ubuntu 12.04/14.04 server ISO (no Ubuntu ISO can be reached from the test
// host), made from Debian's packages: debian-installer's netboot kernel and initrd at the Ubuntu
// ISO's paths (/install/vmlinuz, /install/initrd.gz), booted by isolinux with a syslinux menu laid
// out so that the Ubuntu boot command of definitions/bases/ubuntu.yaml meets what it meets on Ubuntu.
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findExecutable } from '../../src/exec/tools.ts';
import { hashFile } from '../../src/inputs/checksum.ts';
import { run } from '../helpers.ts';

/** The stand-in's file name: the real one's (ubuntu-14.04.6-server-amd64.iso) marked as a stand-in. */
export const STANDIN_ISO_FILE = 'ubuntu-14.04-server-amd64.standin.iso';
/** ISO 9660 allows 32 characters; Ubuntu's is "Ubuntu-Server 14.04.6 LTS amd64". */
export const STANDIN_VOLUME_ID = 'Ubuntu-Server 14.04 stand-in';

const DI_NETBOOT = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
const SYSLINUX_BIOS = '/usr/lib/syslinux/modules/bios';

/** What goes on the ISO, where from, and the Debian package that ships it. */
export const STANDIN_ISO_SOURCES: { onIso: string; from: string; pkg: string }[] = [
  { onIso: 'install/vmlinuz', from: `${DI_NETBOOT}/linux`, pkg: 'debian-installer-12-netboot-amd64' },
  { onIso: 'install/initrd.gz', from: `${DI_NETBOOT}/initrd.gz`, pkg: 'debian-installer-12-netboot-amd64' },
  { onIso: 'isolinux/isolinux.bin', from: '/usr/lib/ISOLINUX/isolinux.bin', pkg: 'isolinux' },
  // isolinux.bin (syslinux 6) loads ldlinux.c32 from its own folder; menu.c32 needs libutil.c32 (readelf -d).
  { onIso: 'isolinux/ldlinux.c32', from: `${SYSLINUX_BIOS}/ldlinux.c32`, pkg: 'syslinux-common' },
  { onIso: 'isolinux/menu.c32', from: `${SYSLINUX_BIOS}/menu.c32`, pkg: 'syslinux-common' },
  { onIso: 'isolinux/libutil.c32', from: `${SYSLINUX_BIOS}/libutil.c32`, pkg: 'syslinux-common' },
];

/**
 * The stand-in's isolinux.cfg. Ubuntu's ISO runs gfxboot (`ui gfxboot bootlogo`): a language
 * chooser, then the main menu; <esc> in the main menu asks "You are leaving the graphical boot menu
 * and starting the text mode interface" and <enter> confirms, leaving an empty `boot:` prompt. So
 * `<esc><wait><esc><wait><enter><wait>` is: close the chooser, leave the menu, confirm; the typed
 * line then goes to `boot:`. gfxboot is not in Debian; syslinux's menu.c32 stands in, with the
 * same three steps as nested menus (syslinux doc/menu.txt: MENU BEGIN/END, MENU START, MENU QUIT;
 * cited from geneC/syslinux 5e426532, Debian ships a 6.04 snapshot of 2019-02):
 *   - it starts in the "language" menu (MENU START); <esc> in a submenu goes to its parent
 *     (com32/menu/menumain.c, KEY_ESC: `if (cm->parent) cm = cm->parent`): the main menu;
 *   - <esc> in the main menu goes to its parent, the top menu, which stands in for gfxboot's
 *     confirmation: its default entry is MENU QUIT, so <enter> leaves the menu system without a
 *     command; ldlinux then shows `boot:` (execute.c longjmps back to the prompt when a COM32
 *     module returns; ldlinux.c main calls ldlinux_enter_command).
 * Why not a single menu that <esc> leaves, with the second <esc> and the <enter> at `boot:`: an
 * <esc> there is ignored (cli.c edit_cmdline has no case for it), but an <enter> on an empty line
 * runs ldlinux_auto_boot(), i.e. the `UI` command again (readconfig.c: `ui` sets default_cmd), and
 * the typed kernel line would land in the menu, whose <enter> boots its default entry without the
 * preseed. The settings the typed line relies on, all syslinux's defaults, spelled out:
 *   PROMPT 0       the UI runs first (1 would start at `boot:`, skipping the menu the keys expect);
 *   TIMEOUT 0      neither the menu nor `boot:` boots anything by itself while Packer waits;
 *   NOESCAPE 0     with 1, enter_cmdline never shows `boot:` (it only auto-boots);
 *   ALLOWOPTIONS 1 with 0, load_kernel drops everything after the kernel name: no preseed/url;
 *   IMPLICIT 1     `/install/vmlinuz` is a file, not a LABEL.
 * SERIAL 0 (which syslinux wants as the first directive) also shows the menu and `boot:` on the
 * first serial port, for a boot test reading the console; keys still come from the keyboard.
 */
export const STANDIN_ISOLINUX_CFG = `SERIAL 0 115200
# Stand-in for the Ubuntu server ISO's boot menu (boxsmith's tests); why it is laid out so: test/installer/standin-iso.ts.
UI menu.c32
PROMPT 0
TIMEOUT 0
NOESCAPE 0
ALLOWOPTIONS 1
IMPLICIT 1

MENU TITLE Leaving the boot menu for the boot: prompt (stand-in for gfxboot's dialog)
LABEL boot-prompt
  MENU LABEL ^OK
  MENU DEFAULT
  MENU QUIT

MENU BEGIN main
  MENU LABEL ^Cancel
  MENU TITLE Ubuntu Server 14.04 (stand-in: Debian's netboot installer)
  LABEL install
    MENU LABEL ^Install Ubuntu Server
    MENU DEFAULT
    KERNEL /install/vmlinuz
    APPEND file=/cdrom/preseed/ubuntu-server.seed vga=788 initrd=/install/initrd.gz quiet --

  MENU BEGIN language
    MENU LABEL ^Language
    MENU TITLE Language (stand-in for gfxboot's chooser)
    MENU START
    LABEL english
      MENU LABEL ^English
      MENU DEFAULT
      MENU EXIT
  MENU END
MENU END
`;

/** The Debian packages the stand-in is made from that are not installed (and xorriso's). */
export function standinIsoMissingPackages(): string[] {
  const missing = new Set(STANDIN_ISO_SOURCES.filter((source) => !existsSync(source.from)).map((source) => source.pkg));
  if (!findExecutable('xorriso')) missing.add('xorriso');
  return [...missing];
}

/**
 * Makes the stand-in Ubuntu server ISO in `dir` (a temp dir): the tree under `dir/tree`, the ISO
 * `dir/ubuntu-14.04-server-amd64.standin.iso`, El Torito bootable by isolinux, and its sha256.
 */
export async function makeStandinInstallerIso(dir: string): Promise<{ iso: string; sha256: string }> {
  const tree = path.join(dir, 'tree');
  for (const source of STANDIN_ISO_SOURCES) {
    if (!existsSync(source.from)) throw new Error(`${source.from} is missing: install the Debian package ${source.pkg}`);
    mkdirSync(path.dirname(path.join(tree, source.onIso)), { recursive: true });
    copyFileSync(source.from, path.join(tree, source.onIso));
  }
  writeFileSync(path.join(tree, 'isolinux/isolinux.cfg'), STANDIN_ISOLINUX_CFG);
  const iso = path.join(dir, STANDIN_ISO_FILE);
  // As Ubuntu's server ISOs are made (debian-cd): isolinux as a no-emulation El Torito image
  // loading 4 sectors, with the boot info table isolinux.bin needs to find itself; Rock Ridge and
  // Joliet names (-r -J).
  const xorriso = run('xorriso', [
    '-as', 'mkisofs', '-r', '-J', '-V', STANDIN_VOLUME_ID, '-o', iso,
    '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
    tree,
  ]);
  if (xorriso.status !== 0) throw new Error(`xorriso could not make ${iso}: ${xorriso.stderr.trim().split('\n').at(-1)}`);
  return { iso, sha256: (await hashFile(iso, 'sha256')).hex };
}
