//! Device rules on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program built
//! from the rules (as runc and crun do), loaded with `bpf(BPF_PROG_LOAD)`
//! and attached to the cgroup directory, replacing earlier ones.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }` (access in the high 16 bits of `access_type`, the
//! device type in the low 16), checks the rules from last to first (the
//! last matching rule wins) and allows when none matches, like a fresh v1
//! cgroup.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::resources::{DeviceKind, DeviceRule};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Opcodes.
const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54;
const ALU32_RSH_K: u8 = 0x74;
const ALU32_MOV_X: u8 = 0xbc;
const ALU64_MOV_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// One eBPF instruction in the kernel's 8-byte encoding.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf) | (u64::from(src & 0xf) << 4)) << 8
        | u64::from(u16::from_ne_bytes(off.to_ne_bytes())) << 16
        | u64::from(u32::from_ne_bytes(imm.to_ne_bytes())) << 32
}

fn access_bits(r: &DeviceRule) -> i32 {
    (if r.read { ACC_READ } else { 0 })
        | (if r.write { ACC_WRITE } else { 0 })
        | (if r.mknod { ACC_MKNOD } else { 0 })
}

/// Builds the device program for `rules`.
pub(crate) fn device_program(rules: &[DeviceRule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff), // r2 = type
        insn(LDX_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16), // r3 = access
        insn(LDX_W, 4, 1, 4, 0),        // r4 = major
        insn(LDX_W, 5, 1, 8, 0),        // r5 = minor
    ];
    for r in rules.iter().rev() {
        // Jumps are emitted with off = 0 and patched to the block's end.
        let mut block: Vec<(u64, bool)> = Vec::new();
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Block => block.push((insn(JNE_K, 2, 0, 0, DEV_BLOCK), true)),
            DeviceKind::Char => block.push((insn(JNE_K, 2, 0, 0, DEV_CHAR), true)),
        }
        let acc = access_bits(r);
        if acc != ACC_READ | ACC_WRITE | ACC_MKNOD {
            block.push((insn(ALU32_MOV_X, 1, 3, 0, 0), false));
            block.push((insn(ALU32_AND_K, 1, 0, 0, acc), false));
            if r.allow {
                // Allow only when every requested access is allowed.
                block.push((insn(JNE_X, 1, 3, 0, 0), true));
            } else {
                // Deny when any requested access is denied.
                block.push((insn(JEQ_K, 1, 0, 0, 0), true));
            }
        }
        if let Some(m) = r.major {
            block.push((
                insn(JNE_K, 4, 0, 0, i32::from_ne_bytes(m.to_ne_bytes())),
                true,
            ));
        }
        if let Some(m) = r.minor {
            block.push((
                insn(JNE_K, 5, 0, 0, i32::from_ne_bytes(m.to_ne_bytes())),
                true,
            ));
        }
        block.push((insn(ALU64_MOV_K, 0, 0, 0, i32::from(r.allow)), false));
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let n = block.len();
        let unconditional = block.iter().all(|(_, jump)| !jump);
        for (i, (ins, jump)) in block.into_iter().enumerate() {
            if jump {
                // Skip the rest of the block: n - i - 1 instructions.
                let off = i16::try_from(n - i - 1).unwrap_or(i16::MAX);
                p.push(ins | u64::from(u16::from_ne_bytes(off.to_ne_bytes())) << 16);
            } else {
                p.push(ins);
            }
        }
        // A rule matching everything decides alone: what follows would be
        // unreachable, which the verifier rejects.
        if unconditional {
            return p;
        }
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// A zeroed `union bpf_attr`, written field by field at the kernel's offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

/// `bpf(cmd, attr, sizeof attr)`.
fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: attr is a valid, writable 128-byte bpf_attr; any pointers
    // written into it point at buffers the caller keeps alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(r)
}

fn fd_from(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = i32::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn raw(fd: BorrowedFd<'_>) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// `bpf(BPF_PROG_LOAD)` of a cgroup device program.
///
/// # Errors
/// The syscall's errno (EPERM without CAP_BPF/CAP_SYS_ADMIN, EINVAL when
/// the verifier rejects the program).
pub(crate) fn load(prog: &[u64]) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut a = Attr::new();
    a.u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32(4, u32::try_from(prog.len()).unwrap_or(u32::MAX))
        .u64(8, prog.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64);
    fd_from(bpf(BPF_PROG_LOAD, &mut a)?)
}

/// `bpf(BPF_PROG_QUERY)`: ids of the device programs attached to `cgroup`.
///
/// # Errors
/// The syscall's errno.
pub(crate) fn query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut a = Attr::new();
    a.u32(0, raw(cgroup))
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, 64);
    bpf(BPF_PROG_QUERY, &mut a)?;
    let mut cnt = [0u8; 4];
    cnt.copy_from_slice(&a.0[24..28]);
    let n = usize::try_from(u32::from_ne_bytes(cnt))
        .unwrap_or(0)
        .min(64);
    Ok(ids[..n].to_vec())
}

/// `bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)`.
///
/// # Errors
/// The syscall's errno.
pub(crate) fn attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, raw(cgroup))
        .u32(4, raw(prog))
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    bpf(BPF_PROG_ATTACH, &mut a).map(|_| ())
}

/// `bpf(BPF_PROG_DETACH)` of one device program.
///
/// # Errors
/// The syscall's errno.
pub(crate) fn detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, raw(cgroup))
        .u32(4, raw(prog))
        .u32(8, BPF_CGROUP_DEVICE);
    bpf(BPF_PROG_DETACH, &mut a).map(|_| ())
}

/// `bpf(BPF_PROG_GET_FD_BY_ID)`.
///
/// # Errors
/// The syscall's errno (ENOENT when the program is gone).
pub(crate) fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, id);
    fd_from(bpf(BPF_PROG_GET_FD_BY_ID, &mut a)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        acc: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            read: acc.contains('r'),
            write: acc.contains('w'),
            mknod: acc.contains('m'),
        }
    }

    /// Runs the program the way the kernel would, for these tests only.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_possible_wrap,
        clippy::cast_sign_loss,
        clippy::cast_lossless
    )]
    fn run(p: &[u64], ty: u32, acc: u32, major: u32, minor: u32) -> u64 {
        let mut r = [0u64; 11];
        let ctx = [(acc << 16) | ty, major, minor];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let code = (i & 0xff) as u8;
            let dst = ((i >> 8) & 0xf) as usize;
            let src = ((i >> 12) & 0xf) as usize;
            let off = ((i >> 16) & 0xffff) as u16 as i16;
            let imm = (i >> 32) as u32 as i32;
            pc += 1;
            match code {
                LDX_W => r[dst] = u64::from(ctx[(off / 4) as usize]),
                ALU32_AND_K => r[dst] = (r[dst] as u32 & imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> imm) as u64,
                ALU32_MOV_X => r[dst] = r[src] as u32 as u64,
                ALU64_MOV_K => r[dst] = imm as i64 as u64,
                JNE_K if r[dst] != imm as u32 as u64 => pc += off as usize,
                JEQ_K if r[dst] == imm as u32 as u64 => pc += off as usize,
                JNE_X if r[dst] != r[src] => pc += off as usize,
                JNE_K | JEQ_K | JNE_X => {}
                EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    const C: u32 = 2;
    const B: u32 = 1;
    const RW: u32 = 6;
    const R: u32 = 2;
    const W: u32 = 4;

    #[test]
    fn deny_all_then_allow_null() {
        let p = device_program(&[
            rule(false, DeviceKind::All, None, None, "rwm"),
            rule(true, DeviceKind::Char, Some(1), Some(3), "rw"),
        ]);
        assert_eq!(run(&p, C, RW, 1, 3), 1);
        assert_eq!(run(&p, C, R, 1, 3), 1);
        assert_eq!(run(&p, C, 1, 1, 3), 0, "mknod not allowed");
        assert_eq!(run(&p, C, R, 1, 5), 0);
        assert_eq!(run(&p, B, R, 1, 3), 0);
    }

    #[test]
    fn nothing_after_a_catch_all_rule() {
        let p = device_program(&[rule(true, DeviceKind::All, None, None, "rwm")]);
        assert_eq!(p.len(), 6 + 2);
        let p = device_program(&[
            rule(true, DeviceKind::Char, Some(1), Some(3), "rwm"),
            rule(false, DeviceKind::All, None, None, "rwm"),
        ]);
        assert_eq!(p.len(), 6 + 2);
        assert_eq!(run(&p, C, R, 1, 3), 0);
    }

    #[test]
    fn empty_rules_allow_everything() {
        let p = device_program(&[]);
        assert_eq!(run(&p, C, RW, 1, 5), 1);
    }

    #[test]
    fn deny_write_blocks_any_request_with_write() {
        let p = device_program(&[rule(false, DeviceKind::Block, Some(8), None, "w")]);
        assert_eq!(run(&p, B, RW, 8, 1), 0);
        assert_eq!(run(&p, B, W, 8, 0), 0);
        assert_eq!(run(&p, B, R, 8, 1), 1);
        assert_eq!(run(&p, B, RW, 9, 1), 1);
    }

    #[test]
    fn last_rule_wins() {
        let p = device_program(&[
            rule(true, DeviceKind::Char, Some(1), Some(5), "rwm"),
            rule(false, DeviceKind::Char, None, None, "rwm"),
        ]);
        assert_eq!(run(&p, C, R, 1, 5), 0);
    }
}
