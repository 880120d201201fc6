//! Seccomp profiles: a typed form of the OCI `linux.seccomp` object and its
//! compilation into a classic BPF program, without libseccomp.
//!
//! The program checks the architecture (x86_64 only: any other, and x32
//! system call numbers, kill the process, as libseccomp's default for an
//! architecture outside the filter does), then, for each system call named
//! by a rule, tries that call's rules in the profile's order: the first rule
//! whose argument conditions all hold gives the action. A call that no rule
//! matches gets the default action.
//!
//! Names the x86_64 kernel does not know are skipped, as runc and crun skip
//! them: profiles such as Docker's list calls of every architecture.

use hull_ns::BpfInstruction;

use crate::syscalls;
use crate::{Error, Result};

/// What happens to a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Allowed.
    Allow,
    /// Fails with this errno.
    Errno(u32),
    /// Kills the calling thread (`SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// Kills the whole process.
    KillProcess,
    /// Sends SIGSYS.
    Trap,
    /// Notifies a ptrace tracer with this value (fails with ENOSYS
    /// without one).
    Trace(u32),
    /// Allowed, and logged by the kernel.
    Log,
}

impl Action {
    /// The `SECCOMP_RET_*` value.
    fn ret(self) -> u32 {
        match self {
            Action::Allow => 0x7fff_0000,
            Action::Errno(e) => 0x0005_0000 | (e & 0xffff),
            Action::KillThread => 0,
            Action::KillProcess => 0x8000_0000,
            Action::Trap => 0x0003_0000,
            Action::Trace(v) => 0x7ff0_0000 | (v & 0xffff),
            Action::Log => 0x7ffc_0000,
        }
    }
}

/// How an argument is compared with a rule's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Compare {
    /// `arg != value`
    Ne,
    /// `arg < value`
    Lt,
    /// `arg <= value`
    Le,
    /// `arg == value`
    Eq,
    /// `arg >= value`
    Ge,
    /// `arg > value`
    Gt,
    /// `arg & value == value_two`
    MaskedEq,
}

/// One condition on a system call argument (all 64 bits are compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// The argument, 0 to 5.
    pub index: u8,
    /// The comparison.
    pub op: Compare,
    /// The value (the mask for [`Compare::MaskedEq`]).
    pub value: u64,
    /// The expected masked value for [`Compare::MaskedEq`].
    pub value_two: u64,
}

/// A rule: system calls by name, conditions on their arguments (all must
/// hold), and the action taken when they do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    /// The system calls.
    pub names: Vec<String>,
    /// What happens to them.
    pub action: Action,
    /// Conditions, all of which must hold.
    pub args: Vec<ArgCondition>,
}

/// A seccomp profile: a default action and rules.
///
/// ```
/// use hull_container::seccomp::{Action, Seccomp};
///
/// // Everything is allowed except mount and umount2, which fail with EPERM.
/// let profile = Seccomp::new(Action::Allow).rule(["mount", "umount2"], Action::Errno(1));
/// assert!(profile.compile().unwrap().len() > 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seccomp {
    /// The action for calls no rule matches.
    pub default: Action,
    /// The rules, tried in order.
    pub rules: Vec<SyscallRule>,
    /// `SECCOMP_FILTER_FLAG_*` flags for seccomp(2).
    pub flags: u32,
}

/// `SECCOMP_FILTER_FLAG_TSYNC`.
pub const FLAG_TSYNC: u32 = 1;
/// `SECCOMP_FILTER_FLAG_LOG`.
pub const FLAG_LOG: u32 = 2;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`.
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`.
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const AND: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K

// Offsets in struct seccomp_data.
const NR: u32 = 0;
const ARCH: u32 = 4;
fn arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}
fn arg_hi(i: u8) -> u32 {
    arg_lo(i) + 4
}

impl Seccomp {
    /// A profile with this default action and no rules.
    pub fn new(default: Action) -> Seccomp {
        Seccomp {
            default,
            rules: Vec::new(),
            flags: 0,
        }
    }

    /// Adds a rule without argument conditions.
    pub fn rule<I, S>(self, names: I, action: Action) -> Seccomp
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rule_with_args(names, action, [])
    }

    /// Adds a rule that applies when every condition holds.
    pub fn rule_with_args<I, S>(
        mut self,
        names: I,
        action: Action,
        args: impl IntoIterator<Item = ArgCondition>,
    ) -> Seccomp
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rules.push(SyscallRule {
            names: names.into_iter().map(Into::into).collect(),
            action,
            args: args.into_iter().collect(),
        });
        self
    }

    /// The x86_64 number of a system call, if the kernel has it.
    pub fn syscall_number(name: &str) -> Option<u32> {
        syscalls::X86_64
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| syscalls::X86_64[i].1)
    }

    /// Compiles the profile into a BPF program for seccomp(2).
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `seccomp`) for an argument index
    /// above 5 or a program over the kernel's 4096 instructions.
    pub fn compile(&self) -> Result<Vec<BpfInstruction>> {
        // The rules of each call, in profile order, calls in first-seen
        // order.
        let mut calls: Vec<(u32, Vec<&SyscallRule>)> = Vec::new();
        for rule in &self.rules {
            if let Some(c) = rule.args.iter().find(|c| c.index > 5) {
                return Err(invalid(format!(
                    "argument index {} in the rule for {:?} (0 to 5 allowed)",
                    c.index, rule.names
                )));
            }
            for name in &rule.names {
                let Some(nr) = Seccomp::syscall_number(name) else {
                    continue;
                };
                match calls.iter_mut().find(|(n, _)| *n == nr) {
                    Some((_, rules)) => {
                        if !rules.iter().any(|r| std::ptr::eq(*r, rule)) {
                            rules.push(rule);
                        }
                    }
                    None => calls.push((nr, vec![rule])),
                }
            }
        }
        let mut a = Asm::default();
        // Anything but x86_64, and x32 numbers, kill the process (each
        // check returns right there: classic BPF jumps reach only 255
        // instructions ahead).
        let kill = Action::KillProcess.ret();
        let native = a.new_label();
        a.stmt(LD_W_ABS, ARCH);
        a.jump(JEQ, AUDIT_ARCH_X86_64, Target::Label(native), Target::Next);
        a.stmt(RET, kill);
        a.place(native);
        let x64 = a.new_label();
        a.stmt(LD_W_ABS, NR);
        a.jump(JGE, X32_SYSCALL_BIT, Target::Next, Target::Label(x64));
        a.stmt(RET, kill);
        a.place(x64);
        let default = self.default.ret();
        for (nr, rules) in &calls {
            // Rules for one call: an unconditional rule ends the search.
            let skip = a.new_label();
            a.jump(JEQ, *nr, Target::Next, Target::Label(skip));
            for rule in rules {
                let next_rule = a.new_label();
                for c in &rule.args {
                    a.condition(c, next_rule);
                }
                a.stmt(RET, rule.action.ret());
                a.place(next_rule);
                if rule.args.is_empty() {
                    break;
                }
            }
            // The call matched but none of its rules did.
            a.stmt(RET, default);
            a.place(skip);
        }
        a.stmt(RET, default);
        let program = a.assemble()?;
        if program.len() > 4096 {
            return Err(invalid(format!(
                "the profile compiles to {} BPF instructions (4096 allowed)",
                program.len()
            )));
        }
        Ok(program)
    }

    /// The profile of an OCI `linux.seccomp` object.
    ///
    /// # Errors
    /// [`Error::Oci`] for `SCMP_ACT_NOTIFY` (there is no seccomp
    /// agent), an architecture other than x86_64, x86 and x32 (kept only as
    /// names: their calls are killed), or an unknown flag.
    pub fn from_oci(s: &oci_spec::runtime::LinuxSeccomp) -> Result<Seccomp> {
        use oci_spec::runtime::{Arch, LinuxSeccompFilterFlag as F};
        let default_errno = s.default_errno_ret().unwrap_or(1);
        let mut profile = Seccomp::new(action(s.default_action(), default_errno, "defaultAction")?);
        for arch in s.architectures().iter().flatten() {
            if !matches!(
                arch,
                Arch::ScmpArchNative | Arch::ScmpArchX86_64 | Arch::ScmpArchX86 | Arch::ScmpArchX32
            ) {
                return Err(Error::Oci {
                    field: "linux.seccomp.architectures".into(),
                    problem: format!("{arch:?} is not supported on x86_64"),
                });
            }
        }
        for flag in s.flags().iter().flatten() {
            profile.flags |= match flag {
                F::SeccompFilterFlagLog => FLAG_LOG,
                F::SeccompFilterFlagTsync => FLAG_TSYNC,
                F::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
                F::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
            };
        }
        for sc in s.syscalls().iter().flatten() {
            let act = action(
                sc.action(),
                sc.errno_ret().unwrap_or(1),
                "syscalls[].action",
            )?;
            let mut args = Vec::new();
            for arg in sc.args().iter().flatten() {
                use oci_spec::runtime::LinuxSeccompOperator as O;
                let index = u8::try_from(arg.index()).unwrap_or(u8::MAX);
                args.push(ArgCondition {
                    index,
                    op: match arg.op() {
                        O::ScmpCmpNe => Compare::Ne,
                        O::ScmpCmpLt => Compare::Lt,
                        O::ScmpCmpLe => Compare::Le,
                        O::ScmpCmpEq => Compare::Eq,
                        O::ScmpCmpGe => Compare::Ge,
                        O::ScmpCmpGt => Compare::Gt,
                        O::ScmpCmpMaskedEq => Compare::MaskedEq,
                    },
                    value: arg.value(),
                    value_two: arg.value_two().unwrap_or(0),
                });
            }
            profile = profile.rule_with_args(sc.names().iter().cloned(), act, args);
        }
        // Catch bad indexes and oversized programs now, not at spawn.
        profile.compile()?;
        Ok(profile)
    }
}

fn action(a: oci_spec::runtime::LinuxSeccompAction, errno: u32, field: &str) -> Result<Action> {
    use oci_spec::runtime::LinuxSeccompAction as A;
    Ok(match a {
        A::ScmpActAllow => Action::Allow,
        A::ScmpActErrno => Action::Errno(errno),
        A::ScmpActKill | A::ScmpActKillThread => Action::KillThread,
        A::ScmpActKillProcess => Action::KillProcess,
        A::ScmpActTrap => Action::Trap,
        A::ScmpActTrace => Action::Trace(errno),
        A::ScmpActLog => Action::Log,
        A::ScmpActNotify => {
            return Err(Error::Oci {
                field: format!("linux.seccomp.{field}"),
                problem: "SCMP_ACT_NOTIFY is not supported (no seccomp agent)".into(),
            });
        }
    })
}

fn invalid(problem: String) -> Error {
    Error::Invalid {
        field: "seccomp",
        problem,
    }
}

/// The high and low 32 bits.
fn halves(v: u64) -> (u32, u32) {
    let [a, b, c, d, e, f, g, h] = v.to_be_bytes();
    (
        u32::from_be_bytes([a, b, c, d]),
        u32::from_be_bytes([e, f, g, h]),
    )
}

/// Where a conditional jump goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

#[derive(Debug)]
enum Item {
    Stmt(u16, u32),
    Jump(u16, u32, Target, Target),
    Label(usize),
}

/// A tiny assembler: forward jumps to labels, resolved at the end.
#[derive(Debug, Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Stmt(code, k));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump(code, k, jt, jf));
    }

    fn new_label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    fn place(&mut self, label: usize) {
        self.items.push(Item::Label(label));
    }

    /// Falls through when the condition holds, else goes to `fail`.
    fn condition(&mut self, c: &ArgCondition, fail: usize) {
        let (hi, lo) = halves(c.value);
        let pass = self.new_label();
        let (p, f) = (Target::Label(pass), Target::Label(fail));
        match c.op {
            Compare::Eq => {
                self.stmt(LD_W_ABS, arg_hi(c.index));
                self.jump(JEQ, hi, Target::Next, f);
                self.stmt(LD_W_ABS, arg_lo(c.index));
                self.jump(JEQ, lo, p, f);
            }
            Compare::Ne => {
                self.stmt(LD_W_ABS, arg_hi(c.index));
                self.jump(JEQ, hi, Target::Next, p);
                self.stmt(LD_W_ABS, arg_lo(c.index));
                self.jump(JEQ, lo, f, p);
            }
            Compare::Gt | Compare::Ge => {
                self.stmt(LD_W_ABS, arg_hi(c.index));
                self.jump(JGT, hi, p, Target::Next);
                self.jump(JEQ, hi, Target::Next, f);
                self.stmt(LD_W_ABS, arg_lo(c.index));
                let op = if c.op == Compare::Gt { JGT } else { JGE };
                self.jump(op, lo, p, f);
            }
            Compare::Lt | Compare::Le => {
                self.stmt(LD_W_ABS, arg_hi(c.index));
                self.jump(JGE, hi, Target::Next, p);
                self.jump(JEQ, hi, Target::Next, f);
                self.stmt(LD_W_ABS, arg_lo(c.index));
                // lo < v  <=> !(lo >= v);  lo <= v  <=> !(lo > v)
                let op = if c.op == Compare::Lt { JGE } else { JGT };
                self.jump(op, lo, f, p);
            }
            Compare::MaskedEq => {
                let (whi, wlo) = halves(c.value_two);
                self.stmt(LD_W_ABS, arg_hi(c.index));
                self.stmt(AND, hi);
                self.jump(JEQ, whi, Target::Next, f);
                self.stmt(LD_W_ABS, arg_lo(c.index));
                self.stmt(AND, lo);
                self.jump(JEQ, wlo, p, f);
            }
        }
        self.place(pass);
    }

    fn assemble(self) -> Result<Vec<BpfInstruction>> {
        // Instruction index of each label.
        let mut at = vec![usize::MAX; self.labels];
        let mut n = 0;
        for item in &self.items {
            match item {
                Item::Label(l) => at[*l] = n,
                _ => n += 1,
            }
        }
        let mut out: Vec<BpfInstruction> = Vec::with_capacity(n);
        for item in &self.items {
            let pc = out.len();
            match *item {
                Item::Label(_) => {}
                Item::Stmt(code, k) => out.push(BpfInstruction {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                }),
                Item::Jump(code, k, jt, jf) => {
                    let off = |t: Target| -> Option<usize> {
                        match t {
                            Target::Next => Some(0),
                            Target::Label(l) => at[l].checked_sub(pc + 1),
                        }
                    };
                    let (Some(t), Some(f)) = (off(jt), off(jf)) else {
                        return Err(invalid("a backward jump (internal error)".into()));
                    };
                    match (u8::try_from(t), u8::try_from(f)) {
                        (Ok(t), Ok(f)) => out.push(BpfInstruction {
                            code,
                            jt: t,
                            jf: f,
                            k,
                        }),
                        // Too far for an 8-bit offset: a conditional jump
                        // over an unconditional one (32-bit offset).
                        _ => {
                            return Err(invalid(format!(
                                "a rule block longer than 255 instructions at instruction {pc}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a program on a seccomp_data in user space, as the kernel would.
    fn run(prog: &[BpfInstruction], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = arch;
        for (i, a) in args.iter().enumerate() {
            (data[5 + 2 * i], data[4 + 2 * i]) = halves(*a);
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = prog[pc];
            pc += 1;
            match ins.code {
                LD_W_ABS => acc = data[(ins.k / 4) as usize],
                AND => acc &= ins.k,
                RET => return ins.k,
                JA => pc += ins.k as usize,
                JEQ | JGT | JGE => {
                    let hold = match ins.code {
                        JEQ => acc == ins.k,
                        JGT => acc > ins.k,
                        _ => acc >= ins.k,
                    };
                    pc += usize::from(if hold { ins.jt } else { ins.jf });
                }
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    const X: u32 = AUDIT_ARCH_X86_64;
    const JA: u16 = 0x05; // BPF_JMP | BPF_JA

    fn nr(name: &str) -> u32 {
        Seccomp::syscall_number(name).unwrap()
    }

    #[test]
    fn table_is_sorted_and_knows_common_calls() {
        assert!(syscalls::X86_64.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(nr("read"), 0);
        assert_eq!(nr("execve"), 59);
        assert_eq!(nr("clone3"), 435);
        assert_eq!(Seccomp::syscall_number("no_such_call"), None);
    }

    #[test]
    fn default_and_unconditional_rules() {
        let p = Seccomp::new(Action::Errno(1))
            .rule(["read", "write", "not_a_call"], Action::Allow)
            .rule(["mkdir"], Action::Errno(13))
            .compile()
            .unwrap();
        assert_eq!(run(&p, nr("read"), X, [0; 6]), Action::Allow.ret());
        assert_eq!(run(&p, nr("write"), X, [0; 6]), Action::Allow.ret());
        assert_eq!(run(&p, nr("mkdir"), X, [0; 6]), Action::Errno(13).ret());
        assert_eq!(run(&p, nr("open"), X, [0; 6]), Action::Errno(1).ret());
    }

    #[test]
    fn foreign_architecture_and_x32_are_killed() {
        let p = Seccomp::new(Action::Allow).compile().unwrap();
        assert_eq!(run(&p, 0, 0x4000_0003, [0; 6]), Action::KillProcess.ret());
        assert_eq!(
            run(&p, X32_SYSCALL_BIT | 1, X, [0; 6]),
            Action::KillProcess.ret()
        );
        assert_eq!(run(&p, 1, X, [0; 6]), Action::Allow.ret());
    }

    #[test]
    fn every_comparison_on_64_bit_values() {
        let values = [
            0u64,
            1,
            7,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0007,
            0x2_0000_0000,
            u64::MAX,
        ];
        let ops = [
            Compare::Ne,
            Compare::Lt,
            Compare::Le,
            Compare::Eq,
            Compare::Ge,
            Compare::Gt,
        ];
        for &v in &values {
            for &op in &ops {
                let cond = ArgCondition {
                    index: 2,
                    op,
                    value: v,
                    value_two: 0,
                };
                let p = Seccomp::new(Action::Errno(1))
                    .rule_with_args(["ioctl"], Action::Allow, [cond])
                    .compile()
                    .unwrap();
                for &arg in &values {
                    let want = match op {
                        Compare::Ne => arg != v,
                        Compare::Lt => arg < v,
                        Compare::Le => arg <= v,
                        Compare::Eq => arg == v,
                        Compare::Ge => arg >= v,
                        Compare::Gt => arg > v,
                        Compare::MaskedEq => unreachable!(),
                    };
                    let got = run(&p, nr("ioctl"), X, [0, 0, arg, 0, 0, 0]) == Action::Allow.ret();
                    assert_eq!(got, want, "{arg:#x} {op:?} {v:#x}");
                }
            }
        }
    }

    #[test]
    fn masked_eq_and_rules_in_order() {
        // Docker's clone rule: no namespace flags.
        let ns_flags = 0x7e02_0000u64;
        let p = Seccomp::new(Action::Errno(1))
            .rule_with_args(
                ["clone"],
                Action::Allow,
                [ArgCondition {
                    index: 0,
                    op: Compare::MaskedEq,
                    value: ns_flags,
                    value_two: 0,
                }],
            )
            .rule_with_args(
                ["clone"],
                Action::Errno(38),
                [ArgCondition {
                    index: 1,
                    op: Compare::Eq,
                    value: 5,
                    value_two: 0,
                }],
            )
            .compile()
            .unwrap();
        let clone = nr("clone");
        assert_eq!(
            run(&p, clone, X, [0x11, 0, 0, 0, 0, 0]),
            Action::Allow.ret()
        );
        assert_eq!(
            run(&p, clone, X, [0x2000_0000, 0, 0, 0, 0, 0]),
            Action::Errno(1).ret()
        );
        assert_eq!(
            run(&p, clone, X, [0x2000_0000, 5, 0, 0, 0, 0]),
            Action::Errno(38).ret()
        );
    }

    #[test]
    fn a_profile_allowing_every_call_compiles_and_works() {
        // Like Docker's and podman's profiles: hundreds of names in one
        // rule, conditional rules after it, default ERRNO.
        let all: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
        let p = Seccomp::new(Action::Errno(1))
            .rule(
                all.iter().copied().filter(|n| *n != "personality"),
                Action::Allow,
            )
            .rule_with_args(
                ["personality"],
                Action::Allow,
                [ArgCondition {
                    index: 0,
                    op: Compare::Eq,
                    value: 8,
                    value_two: 0,
                }],
            )
            .compile()
            .unwrap();
        assert!(p.len() > 2 * all.len());
        for (name, nr) in syscalls::X86_64 {
            let want = if *name == "personality" {
                Action::Errno(1)
            } else {
                Action::Allow
            };
            assert_eq!(run(&p, *nr, X, [0; 6]), want.ret(), "{name}");
        }
        assert_eq!(
            run(&p, nr("personality"), X, [8, 0, 0, 0, 0, 0]),
            Action::Allow.ret()
        );
        assert_eq!(run(&p, 1000, X, [0; 6]), Action::Errno(1).ret());
        assert_eq!(run(&p, 0, 0x4000_0003, [0; 6]), Action::KillProcess.ret());
    }

    #[test]
    fn bad_index_is_an_error() {
        let e = Seccomp::new(Action::Allow)
            .rule_with_args(
                ["read"],
                Action::Errno(1),
                [ArgCondition {
                    index: 6,
                    op: Compare::Eq,
                    value: 0,
                    value_two: 0,
                }],
            )
            .compile()
            .unwrap_err();
        assert!(e.to_string().contains("argument index 6"), "{e}");
    }
}
