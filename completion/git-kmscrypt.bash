# bash completion for git kmscrypt (git-remote-kmscrypt 0.1.0).
# Generated from src/cli/help/ by 'npm run generate'; do not edit.
#
# git's own bash completion calls _git_kmscrypt to complete 'git kmscrypt ...'. Either source
# this file from ~/.bashrc:
#   source "$(npm root -g)/git-remote-kmscrypt/completion/git-kmscrypt.bash"
# or, where the bash-completion package loads completions on demand, link it as
#   ~/.local/share/bash-completion/completions/git-kmscrypt

_git_kmscrypt ()
{
	local subcommands="init info verify doctor rotate-key set-head gc forget keys local-kms"
	local subcommand="$(__git_find_on_cmdline "$subcommands help")"
	if [ -z "$subcommand" ]; then
		case "$cur" in
		-*)
			__gitcomp "--help --version"
			;;
		*)
			__gitcomp "$subcommands help version"
			;;
		esac
		return
	fi

	case "$subcommand,$prev" in
	init,--object-format)
		__gitcomp "sha1 sha256"
		return
		;;
	init,-b|init,--initial-branch)
		COMPREPLY=()
		return
		;;
	rotate-key,--to)
		COMPREPLY=()
		return
		;;
	gc,--grace)
		COMPREPLY=()
		return
		;;
	keys,--alias)
		COMPREPLY=()
		return
		;;
	keys,--description)
		COMPREPLY=()
		return
		;;
	keys,--keyring)
		COMPREPLY=()
		return
		;;
	local-kms,--port)
		COMPREPLY=()
		return
		;;
	local-kms,--keyring)
		COMPREPLY=()
		return
		;;
	local-kms,--region)
		COMPREPLY=()
		return
		;;
	local-kms,--deny)
		COMPREPLY=()
		return
		;;
	local-kms,--deny-file)
		COMPREPLY=()
		return
		;;
	esac

	case "$subcommand,$cur" in
	help,*)
		__gitcomp "$subcommands"
		;;
	init,-*)
		__gitcomp "--object-format --initial-branch --json --help"
		;;
	info,-*)
		__gitcomp "--json --help"
		;;
	verify,-*)
		__gitcomp "--json --help"
		;;
	doctor,-*)
		__gitcomp "--json --help"
		;;
	rotate-key,-*)
		__gitcomp "--to --json --help"
		;;
	set-head,-*)
		__gitcomp "--json --help"
		;;
	gc,-*)
		__gitcomp "--grace --progress --quiet --json --help"
		;;
	forget,-*)
		__gitcomp "--help"
		;;
	keys,-*)
		__gitcomp "--alias --description --keyring --json --help"
		;;
	local-kms,-*)
		__gitcomp "--port --keyring --region --deny --deny-file --verbose --help"
		;;
	info,*|verify,*|doctor,*|rotate-key,*|set-head,*|gc,*|forget,*)
		__gitcomp_nl "$(__git_remotes)"
		;;
	esac
}
