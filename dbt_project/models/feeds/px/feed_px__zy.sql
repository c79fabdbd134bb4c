-- ZY: the PX-1.0 feed (candidates less quarantine); columns from the model's contract.
{{ px_feed(ref('feed_px_candidates__zy'), 'ZY') }}
