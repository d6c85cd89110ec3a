#compdef qrr

_qrr_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _QRR_COMPLETE=complete_zsh qrr)
}

compdef _qrr_completion qrr
