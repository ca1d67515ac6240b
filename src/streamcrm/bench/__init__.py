"""``streamcrm bench``: raw consumer ceiling vs naive Faust vs the streamcrm pipeline."""
